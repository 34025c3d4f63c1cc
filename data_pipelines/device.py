"""Host batches -> global sharded `jax.Array`s.

Each host holds only its own rows; `jax.make_array_from_process_local_data`
assembles the global array without any host ever materialising the global batch.
The batch axis is sharded over the mesh axes ("data", "fsdp") - exactly the
data-parallel layout of docs/design.md (with fsdp=1 it is pmap's layout).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import PartitionSpec as P

BATCH_AXES = ("data", "fsdp")


def batch_sharding(mesh, ndim: int):
    axes = tuple(a for a in BATCH_AXES if a in mesh.axis_names)
    return jax.sharding.NamedSharding(mesh, P(axes if axes else None, *([None] * (ndim - 1))))


def to_global_batch(host_batch: dict, mesh) -> dict:
    """Dict of host-local numpy arrays [b_host, ...] -> dict of global jax.Arrays [b_host * hosts, ...]."""
    out = {}
    for key, value in host_batch.items():
        value = np.asarray(value)
        out[key] = jax.make_array_from_process_local_data(batch_sharding(mesh, value.ndim), value)
    return out
