"""Refuse a train config that cannot mean anything, before a device or a file is touched.

ml_collections types each override by its default, so `--config.num_steps=-1` is
an int and would run a loop of no steps with exit 0, `checkpoint.keep=0` would
keep no checkpoint at all, and a NaN learning rate would train NaN weights. Each
check here names the key and says what values make sense.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from vla_jax.errors import VLAJaxError

# What `train.on_nonfinite` may be: stop the run at the first non-finite step (default), or skip
# that update (params and optimizer state unchanged) and count it.
NONFINITE_POLICIES = ("stop", "skip")


def _get(config: Any, dotted: str) -> Any:
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# (key, smallest allowed value, why): integers.
INT_AT_LEAST = (
    ("num_steps", 1, "the number of optimizer updates"),
    ("batch_size", 1, "the global batch per step"),
    ("log_every", 1, "steps between metric lines"),
    ("checkpoint.every", 1, "updates between checkpoints"),
    ("checkpoint.keep", 1, "how many checkpoints stay on disk; 0 would keep none"),
    ("optimizer.grad_accum_steps", 1, "micro-batches per update"),
    ("optimizer.warmup_steps", 0, "warm-up updates"),
)
# (key, lowest, highest, lowest included): finite floats.
FLOAT_RANGES = (
    ("optimizer.learning_rate", 0.0, math.inf, False),
    ("optimizer.end_lr_ratio", 0.0, 1.0, True),
    ("optimizer.b1", 0.0, 1.0, True),
    ("optimizer.b2", 0.0, 1.0, True),
    ("optimizer.eps", 0.0, math.inf, False),
    ("optimizer.weight_decay", 0.0, math.inf, True),
    ("optimizer.grad_clip", 0.0, math.inf, True),
)


def check_train_config(config: Any) -> None:
    """Raises `VLAJaxError` naming the first key whose value cannot be trained with."""
    for key, low, why in INT_AT_LEAST:
        value = _get(config, key)
        if not _is_int(value) or value < low:
            raise VLAJaxError(f"config {key}={value!r}: must be an integer >= {low} ({why}); set --config.{key}=N")
    for key, low, high, low_ok in FLOAT_RANGES:
        value = _get(config, key)
        in_range = _is_number(value) and math.isfinite(value) and (value >= low if low_ok else value > low)
        if not in_range or (math.isfinite(high) and value > high):
            bounds = f"{'[' if low_ok else '('}{low:g}, {high:g}{']' if math.isfinite(high) else ')'}"
            raise VLAJaxError(f"config {key}={value!r}: must be a finite number in {bounds}; set --config.{key}=VALUE")
    policy = config.get("on_nonfinite", "stop")
    if policy not in NONFINITE_POLICIES:
        raise VLAJaxError(f"config on_nonfinite={policy!r}: choose one of {', '.join(NONFINITE_POLICIES)}")


def check_workdir(workdir: Path) -> None:
    """A writable folder (created if missing); a file, a read-only folder or a bad parent is one line."""
    if workdir.exists() and not workdir.is_dir():
        raise VLAJaxError(f"--workdir {workdir} is a file, not a folder; pass a folder (new or a run to resume)")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise VLAJaxError(
            f"--workdir {workdir} cannot be created ({err.strerror or err}); pick a folder you can write to"
        ) from None
    probe = workdir / f".write_test_{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise VLAJaxError(
            f"--workdir {workdir} is not writable ({err.strerror or err}); pick a folder you can write to"
        ) from None
