"""Errors a robot integrator can fix: each message says what is wrong, where, and what to do."""


class RuntimeConfigError(Exception):
    """The export folder is missing a file, a file was altered, or a config is of an unknown version."""


class InputError(ValueError):
    """A `Policy.step` / `Policy.reset` argument is unusable (wrong dtype, shape, channels, empty text)."""


class NonFiniteActionError(RuntimeError):
    """`Policy.step` computed an action chunk holding NaN or infinity; it returns nothing instead.

    Catch it in the control loop and stop the robot (send zero velocity / hold position). The
    episode's history may hold the bad state: call `Policy.reset(instruction)` before stepping again.
    The policy server answers it with ``{"type": "error", "code": "non_finite_action"}`` and the
    client raises it again on the robot side.
    """
