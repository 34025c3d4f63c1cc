"""User-facing data errors: malformed episodes, NaN actions, wrong shapes, missing keys.

Every message names the file, the episode and the key, and says how to fix it.
The `vla-jax` CLI prints it as one line.
"""


class DataError(Exception):
    """Bad input data; the message is the whole explanation."""
