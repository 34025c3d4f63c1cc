"""Per-array checksums: written with every checkpoint, checked at every restore.

Orbax and tensorstore (OCDBT/zarr) verify structure and sizes but not the bytes
of the array data: one flipped byte in a parameter restores silently (measured:
a weight became 1.2e36). So each save also writes, per array, two 32-bit sums of
its raw words: their plain sum and their index-weighted sum, both mod 2**32.
Integer sums are exact in any reduction order, so they are computed on the
device over the sharded array (no gather to one host), and any single changed
byte changes the plain sum. A mismatch names the array and the item folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vla_jax.errors import VLAJaxError


class CorruptCheckpoint(VLAJaxError):
    """A checkpoint's data does not match what was written (or cannot be read at all)."""


def _words(x: jax.Array) -> jax.Array:
    """The array's bytes as uint32 words (smaller types widened, 8-byte types split in two)."""
    if x.dtype == jnp.bool_:
        return x.astype(jnp.uint32)
    size = jnp.dtype(x.dtype).itemsize
    unsigned = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint32}[size]
    return jax.lax.bitcast_convert_type(x, unsigned).astype(jnp.uint32)


def _sums(x: jax.Array) -> jax.Array:
    w = _words(x).reshape(-1)
    index = jax.lax.iota(jnp.uint32, w.shape[0]) + jnp.uint32(1)
    return jnp.stack([jnp.sum(w, dtype=jnp.uint32), jnp.sum(w * index, dtype=jnp.uint32)])


_tree_sums = jax.jit(lambda tree: jax.tree.map(_sums, tree))


def host_value(x: Any) -> np.ndarray:
    # The sums are replicated; a multi-host array is read from this process's own copy.
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        x = x.addressable_data(0)
    return np.asarray(jax.device_get(x))


def tree_checksums(tree: Any) -> dict[str, list[int]]:
    """``{"a/b/c": [sum, weighted sum]}`` for every array leaf of ``tree``."""
    sums = _tree_sums(tree)
    flat = jax.tree_util.tree_flatten_with_path(sums)[0]
    return {
        jax.tree_util.keystr(path, simple=True, separator="/"): [int(v) for v in host_value(leaf)]
        for path, leaf in flat
    }


def json_digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def check(expected: dict[str, list[int]], tree: Any, where: str) -> None:
    """Raises `CorruptCheckpoint` naming the first array whose checksums differ from ``expected``."""
    got = tree_checksums(tree)
    if set(got) != set(expected):
        raise CorruptCheckpoint(
            f"{where}: holds arrays {sorted(set(got) ^ set(expected))[:3]} that its "
            "integrity record does not (or the reverse)"
        )
    for name, sums in got.items():
        if sums != list(expected[name]):
            raise CorruptCheckpoint(
                f"{where}: array {name} does not match the checksum written at save "
                "(the file was altered or damaged on disk)"
            )


def check_items(record: dict, items: dict[str, Any], where: Callable[[str], str]) -> None:
    """Checks each restored item (``{"params": tree, ...}``) against its part of an integrity ``record``;
    ``where(item)`` names the item's folder in the error."""
    for item, tree in items.items():
        expected = {k: v for k, v in record["arrays"].items() if k.startswith(f"{item}/")}
        check(expected, {item: tree}, where(item))
