"""msgpack with numpy arrays as {"__ndarray__": True, "dtype", "shape", "data"}: never pickle.

Only plain numeric dtypes are accepted on decode (no object arrays), and the
byte count must match dtype x shape, so a hostile or truncated message is an
error, never code execution or a silently reshaped array.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

ALLOWED_KINDS = "biuf"  # bool, signed, unsigned, float


class WireError(ValueError):
    """A message that is not valid msgpack-numpy."""


def _default(obj: Any):
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in ALLOWED_KINDS:
            raise TypeError(f"cannot send an array of dtype {obj.dtype}; only numeric arrays travel")
        arr = np.ascontiguousarray(obj)
        return {"__ndarray__": True, "dtype": arr.dtype.str, "shape": list(arr.shape), "data": arr.tobytes()}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _hook(d: dict):
    if d.get("__ndarray__") is not True:
        return d
    try:
        dtype = np.dtype(d["dtype"])
        shape = tuple(int(s) for s in d["shape"])
        data = d["data"]
    except (KeyError, TypeError, ValueError) as err:
        raise WireError(f"malformed array field ({err!r}); expected dtype, shape, data") from err
    if dtype.kind not in ALLOWED_KINDS:
        raise WireError(f"array dtype {dtype} is not allowed; send bool/int/uint/float arrays")
    if not isinstance(data, (bytes, bytearray)):
        raise WireError("array 'data' must be bytes")
    if any(s < 0 for s in shape) or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != len(data):
        raise WireError(
            f"array of shape {shape} and dtype {dtype} needs "
            f"{int(np.prod(shape, dtype=np.int64)) * dtype.itemsize} bytes, got {len(data)}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_default, use_bin_type=True)  # pyright: ignore[reportReturnType]  (never None)


def unpackb(data: bytes) -> Any:
    if not isinstance(data, (bytes, bytearray)):
        raise WireError("expected a binary websocket frame with a msgpack message, got text")
    try:
        return msgpack.unpackb(data, object_hook=_hook, raw=False, strict_map_key=True)
    except WireError:
        raise
    except Exception as err:  # msgpack raises several unrelated types for bad bytes
        raise WireError(f"not a msgpack message ({type(err).__name__}: {err})") from err
