"""Multi-host start-up: initialise `jax.distributed` from the environment.

One code path for every cluster we run on, decided by environment variables so
that the launch scripts (and SLURM / torchrun-style launchers) need not pass
flags through `vla-jax train`:

1. ``VLA_JAX_COORDINATOR`` (``host:port``), ``VLA_JAX_PROCESS_ID``,
   ``VLA_JAX_NUM_PROCESSES`` (and optionally ``VLA_JAX_LOCAL_DEVICE_IDS``):
   explicit, wins over everything else (multi-GPU boxes, tests on localhost).
2. JAX's own ``JAX_COORDINATOR_ADDRESS`` / ``JAX_PROCESS_ID`` /
   ``JAX_NUM_PROCESSES``: passed through unchanged.
3. A Cloud TPU VM (``TPU_WORKER_HOSTNAMES`` / ``TPU_ACCELERATOR_TYPE`` set by
   the TPU runtime) or a SLURM allocation with more than one task: JAX
   auto-detects coordinator, ids and count, so we call ``initialize()`` bare.
4. Nothing set: a single process; `jax.distributed` is not touched.

It must run before anything asks JAX for its devices, which is why
`vla_jax.train.loop.train` calls it first.
"""

from __future__ import annotations

import dataclasses
import os

import jax

from vla_jax.errors import VLAJaxError

_EXPLICIT = ("VLA_JAX_COORDINATOR", "VLA_JAX_PROCESS_ID", "VLA_JAX_NUM_PROCESSES")
_JAX_STANDARD = ("JAX_COORDINATOR_ADDRESS", "JAX_PROCESS_ID", "JAX_NUM_PROCESSES")

_initialized = False


@dataclasses.dataclass(frozen=True)
class DistributedEnv:
    """What `initialize_from_env` decided, for logging and tests."""

    mode: str  # "single", "explicit", "jax_env", "tpu", "slurm"
    coordinator: str | None = None
    process_id: int | None = None
    num_processes: int | None = None
    local_device_ids: tuple[int, ...] | None = None


def _int_env(env: dict[str, str], name: str) -> int:
    value = env[name]
    try:
        return int(value)
    except ValueError:
        raise VLAJaxError(
            f"environment variable {name}={value!r} is not an integer; set it to a process number"
        ) from None


def detect(env: dict[str, str] | None = None) -> DistributedEnv:
    """Read the environment and decide how to start (pure: no JAX calls)."""
    env = dict(os.environ if env is None else env)
    present = [name for name in _EXPLICIT if env.get(name)]
    if present:
        missing = [name for name in _EXPLICIT if not env.get(name)]
        if missing:
            raise VLAJaxError(
                f"multi-host set-up: {', '.join(present)} set but {', '.join(missing)} missing; "
                "set all three of VLA_JAX_COORDINATOR (host:port), VLA_JAX_PROCESS_ID, VLA_JAX_NUM_PROCESSES"
            )
        process_id = _int_env(env, "VLA_JAX_PROCESS_ID")
        num_processes = _int_env(env, "VLA_JAX_NUM_PROCESSES")
        if not 0 <= process_id < num_processes:
            raise VLAJaxError(f"VLA_JAX_PROCESS_ID={process_id} must be in [0, VLA_JAX_NUM_PROCESSES={num_processes})")
        local = env.get("VLA_JAX_LOCAL_DEVICE_IDS")
        local_ids = tuple(int(x) for x in local.split(",")) if local else None
        return DistributedEnv("explicit", env["VLA_JAX_COORDINATOR"], process_id, num_processes, local_ids)
    if all(env.get(name) for name in _JAX_STANDARD):
        return DistributedEnv(
            "jax_env",
            env["JAX_COORDINATOR_ADDRESS"],
            _int_env(env, "JAX_PROCESS_ID"),
            _int_env(env, "JAX_NUM_PROCESSES"),
        )
    hostnames = env.get("TPU_WORKER_HOSTNAMES", "")
    if "," in hostnames or (env.get("TPU_ACCELERATOR_TYPE") and env.get("TPU_WORKER_ID")):
        return DistributedEnv("tpu")
    if int(env.get("SLURM_NTASKS", "1") or 1) > 1 and env.get("SLURM_JOB_ID"):
        return DistributedEnv("slurm")
    return DistributedEnv("single")


def initialize_from_env(env: dict[str, str] | None = None) -> DistributedEnv:
    """Initialise `jax.distributed` once per process as the environment asks."""
    global _initialized
    decided = detect(env)
    if _initialized or decided.mode == "single":
        return decided
    if decided.mode in ("explicit", "jax_env"):
        jax.distributed.initialize(
            coordinator_address=decided.coordinator,
            num_processes=decided.num_processes,
            process_id=decided.process_id,
            local_device_ids=list(decided.local_device_ids) if decided.local_device_ids else None,
        )
    else:  # Cloud TPU or SLURM: JAX's cluster auto-detection fills everything in.
        jax.distributed.initialize()
    _initialized = True
    return decided


def is_main_process() -> bool:
    """Only process 0 writes logs, TensorBoard events and the workdir's JSON files."""
    return jax.process_index() == 0
