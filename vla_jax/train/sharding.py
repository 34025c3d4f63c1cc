"""Mesh and sharding rules: one `("data", "fsdp")` mesh from 1 CPU to a TPU pod.

* The batch is split over both axes (every device gets a distinct slice).
* With ``fsdp == 1`` every parameter and optimizer slot is replicated: this is
  exactly pmap-style data parallelism, the gradient mean being inserted by XLA.
* With ``fsdp > 1`` a leaf at least ``min_shard_size`` elements large is split
  along its largest dimension divisible by ``fsdp`` (ties: the later axis, which
  for kernels is the output features, keeping the stacked layer axis whole);
  everything smaller or indivisible stays replicated because sharding it would
  cost more in collectives than it saves in memory.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from vla_jax.errors import VLAJaxError

BATCH_AXES = ("data", "fsdp")


def make_mesh(data: int = -1, fsdp: int = 1, devices: list | None = None) -> Mesh:
    """A 2-D mesh; ``data=-1`` takes every device not used by ``fsdp``."""
    devices = list(jax.devices() if devices is None else devices)
    count = len(devices)
    if fsdp < 1 or count % fsdp:
        raise VLAJaxError(
            f"mesh: fsdp={fsdp} does not divide the {count} available devices; "
            "set --config.mesh.fsdp to a divisor of the device count"
        )
    if data == -1:
        data = count // fsdp
    if data * fsdp != count:
        raise VLAJaxError(
            f"mesh: data={data} x fsdp={fsdp} = {data * fsdp} but {count} devices are available; "
            "set --config.mesh.data=-1 to use them all"
        )
    # mesh_utils orders devices so that the fsdp axis follows the fast interconnect on TPU.
    if len(devices) == jax.device_count() and devices == list(jax.devices()):
        grid = mesh_utils.create_device_mesh((data, fsdp), devices=devices, allow_split_physical_axes=True)
    else:
        grid = np.asarray(devices).reshape(data, fsdp)
    return Mesh(grid, BATCH_AXES)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) dimension split over every device of the mesh."""
    return NamedSharding(mesh, P(BATCH_AXES))


def leaf_spec(shape: tuple[int, ...], fsdp: int, min_shard_size: int) -> P:
    """The FSDP rule for one array (see module docstring)."""
    if fsdp <= 1 or not shape or math.prod(shape) < min_shard_size:
        return P()
    candidates = [i for i, n in enumerate(shape) if n % fsdp == 0]
    if not candidates:
        return P()
    axis = max(candidates, key=lambda i: (shape[i], i))
    spec: list[Any] = [None] * len(shape)
    spec[axis] = "fsdp"
    return P(*spec)


def tree_shardings(tree: Any, mesh: Mesh, min_shard_size: int = 2**14) -> Any:
    """NamedShardings for every leaf of a (possibly abstract) pytree."""
    fsdp = mesh.shape["fsdp"]

    def one(leaf):
        shape = tuple(getattr(leaf, "shape", ()))
        return NamedSharding(mesh, leaf_spec(shape, fsdp, min_shard_size))

    return jax.tree.map(one, tree)


def check_global_batch(global_batch_size: int, mesh: Mesh) -> None:
    if global_batch_size % mesh.size:
        raise VLAJaxError(
            f"batch_size={global_batch_size} is not divisible by the {mesh.size} devices of the mesh; "
            f"set --config.batch_size to a multiple of {mesh.size}"
        )
    if global_batch_size % jax.process_count():
        raise VLAJaxError(f"batch_size={global_batch_size} is not divisible by the {jax.process_count()} processes")
