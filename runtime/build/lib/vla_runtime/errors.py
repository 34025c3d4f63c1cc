"""Errors a robot integrator can fix: each message says what is wrong, where, and what to do."""


class RuntimeConfigError(Exception):
    """The export folder is missing a file, a file was altered, or a config is of an unknown version."""


class InputError(ValueError):
    """A `Policy.step` / `Policy.reset` argument is unusable (wrong dtype, shape, channels, empty text)."""
