"""Host batches -> global sharded `jax.Array`s, prefetched so the accelerator never waits.

Each host holds only its own rows; `jax.make_array_from_process_local_data`
assembles the global array without any host ever materialising the global batch.
The batch axis is sharded over the mesh axes ("data", "fsdp") - exactly the
data-parallel layout of DESIGN.md (with fsdp=1 it is pmap's layout).
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator

import numpy as np

BATCH_AXES = ("data", "fsdp")


def batch_sharding(mesh, ndim: int):
    import jax
    from jax.sharding import PartitionSpec as P

    axes = tuple(a for a in BATCH_AXES if a in mesh.axis_names)
    return jax.sharding.NamedSharding(mesh, P(axes if axes else None, *([None] * (ndim - 1))))


def to_global_batch(host_batch: dict, mesh) -> dict:
    """Dict of host-local numpy arrays [b_host, ...] -> dict of global jax.Arrays [b_host * hosts, ...]."""
    import jax

    out = {}
    for key, value in host_batch.items():
        value = np.asarray(value)
        out[key] = jax.make_array_from_process_local_data(batch_sharding(mesh, value.ndim), value)
    return out


class _End:
    pass


def prefetch_to_device(batches: Iterable[dict], mesh, size: int = 2) -> Iterator[dict]:
    """Background thread that keeps `size` global batches already transferred to the devices.

    Host->device copies are asynchronous in JAX, so a small buffer (2) hides both
    the host pipeline's jitter and the transfer behind the previous train step.
    Exceptions from the host loader are re-raised in the consumer, not swallowed.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, size))
    stop = threading.Event()

    def producer():
        try:
            for batch in batches:
                if stop.is_set():
                    return
                q.put(to_global_batch(batch, mesh))
            q.put(_End())
        except BaseException as err:  # noqa: BLE001 - delivered to the consumer
            q.put(err)

    thread = threading.Thread(target=producer, name="prefetch_to_device", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if isinstance(item, _End):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while not q.empty():  # unblock the producer so the thread can exit
            q.get_nowait()
