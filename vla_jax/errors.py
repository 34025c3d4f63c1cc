"""The one exception type the `vla-jax` CLI turns into a single-line message.

Raise `VLAJaxError` for anything a user can fix (bad path, bad config key, a
checkpoint of the wrong shape): say what is wrong, where (file, key, tensor),
and how to fix it. Programming errors stay ordinary exceptions with tracebacks.
"""


class VLAJaxError(Exception):
    """A user-facing error: the message is the whole explanation."""
