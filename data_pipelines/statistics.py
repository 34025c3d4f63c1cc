"""Action (and proprio) statistics (mean, std, min, max, q01, q99) and normalisation.

Statistics are computed once per dataset *and transform* and cached as JSON keyed
by a hash of both - the dataset's bytes (`content_hash`), not its file sizes, and
the standardization code - so re-converting episodes with fixed actions, or
changing the standardization or the action dims, gives a new file instead of
silently reusing stale numbers (a top source of "the robot drives at the wrong
scale"). The dict is plain JSON so the trainer saves it with every checkpoint and
the export ships it to the robot runtime.

Modes: `bounds` maps [min, max] -> [-1, 1]; `bounds_q99` maps [q01, q99] -> [-1, 1]
(robust to teleop spikes); both clip to [-1, 1]. `normal` is (x - mean) / std.
Dims with mask False (grippers already in [0, 1]) are left alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any

import numpy as np

from data_pipelines.errors import DataError
from vla_runtime import policy_io
from vla_runtime.errors import RuntimeConfigError

log = logging.getLogger("data_pipelines")
MODES = policy_io.NORMALIZATION_MODES
STAT_KEYS = policy_io.ActionStatistics.STAT_KEYS


def summarize(values: np.ndarray, mask=None, what: str = "actions") -> dict:
    """Per-dim mean, std, min, max, q01, q99 (+ the normalisation mask) of an [N, D] array, JSON-ready."""
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise DataError(f"cannot compute statistics of {what} with shape {values.shape}; need [N>0, D]")
    bad = ~np.isfinite(values)
    if bad.any():
        dims = sorted(set(np.nonzero(bad)[1].tolist()))
        raise DataError(
            f"{what}: {int(bad.sum())} non-finite values (dims {dims}); fix the source data or its standardization"
        )
    mask = np.ones(values.shape[1], bool) if mask is None else np.asarray(mask, bool)
    stats = {
        "mean": values.mean(0),
        "std": values.std(0),
        "min": values.min(0),
        "max": values.max(0),
        "q01": np.quantile(values, 0.01, axis=0),
        "q99": np.quantile(values, 0.99, axis=0),
    }
    out = {k: [float(x) for x in v] for k, v in stats.items()}
    out["mask"] = [bool(x) for x in mask]
    return out


def compute_statistics(actions: np.ndarray, mask=None, num_trajectories: int | None = None) -> dict:
    """Statistics of an [N, A] action array as JSON-ready lists."""
    actions = np.asarray(actions, np.float64)
    return {
        "action": summarize(actions, mask),
        "num_transitions": int(actions.shape[0]),
        "num_trajectories": int(num_trajectories) if num_trajectories is not None else None,
    }


def stats_hash(identity: dict) -> str:
    """Stable hash of what determines the numbers: dataset identity + transform description."""
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def default_cache_dir() -> str:
    return os.environ.get("VLA_JAX_STATS_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "vla_jax", "stats"))


def load_or_compute(name: str, identity: dict, compute_fn, cache_dir: str | None = None) -> dict:
    """Return cached statistics for (name, identity) or compute them with `compute_fn()` and cache."""
    cache_dir = cache_dir or default_cache_dir()
    path = os.path.join(cache_dir, f"{name}_{stats_hash(identity)}.json")
    if os.path.exists(path):
        with open(path) as f:
            try:
                cached = json.load(f)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: corrupt statistics cache ({err}); delete the file to recompute") from err
        log.info("statistics of %s loaded from %s", name, path)
        return cached
    stats = compute_fn()
    stats["identity"] = identity
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(stats, f, indent=1)
    os.replace(tmp, path)  # atomic: concurrent hosts never read half a file
    log.info("statistics of %s cached in %s", name, path)
    return stats


def read_statistics_file(path: str, mask, what: str) -> dict:
    """Declared (precomputed) action statistics: a JSON object with `"action": {mean, std, min, max, q01, q99}`
    of the standardized action (e.g. a line `vla-jax stats` printed), checked like an export's statistics."""
    import tensorflow as tf  # tf.io.gfile: local and gs:// alike

    try:
        with tf.io.gfile.GFile(path, "r") as f:
            raw = json.load(f)
    except (OSError, tf.errors.OpError, json.JSONDecodeError) as err:
        raise DataError(
            f"{what}: cannot read its statistics file {path} ({err}); fix `statistics` in its entry"
        ) from None
    action = raw.get("action") if isinstance(raw, dict) else None
    action = action.get("action", action) if isinstance(action, dict) and "mean" not in action else action
    if not isinstance(action, dict) or any(k not in action for k in STAT_KEYS):
        raise DataError(f'{path}: needs "action": {{{", ".join(STAT_KEYS)}}} ({what}); write it with vla-jax stats')
    mask = [bool(m) for m in mask]
    bad = [k for k in STAT_KEYS if len(action[k]) != len(mask)]
    if bad:
        raise DataError(f"{path}: action {bad[0]} has {len(action[bad[0]])} values; {what} has {len(mask)} dims")
    fields = {k: np.asarray(action[k], np.float64) for k in STAT_KEYS}
    try:
        f = fields
        policy_io.ActionStatistics(
            "bounds", f["mean"], f["std"], f["min"], f["max"], f["q01"], f["q99"], np.asarray(mask)
        ).check(path)
    except RuntimeConfigError as err:
        raise DataError(f"{err} ({what})") from None
    stats: dict[str, Any] = {"action": {**{k: [float(x) for x in v] for k, v in fields.items()}, "mask": mask}}
    stats["num_transitions"] = raw.get("num_transitions")
    stats["num_trajectories"] = raw.get("num_trajectories")
    if isinstance(raw.get("proprio"), dict):
        stats["proprio"] = raw["proprio"]
    stats["source"] = path
    return stats


def _arrays(stats: dict, xp, dtype) -> dict:
    a = stats["action"] if "action" in stats else stats
    arrays = {k: xp.asarray(np.asarray(a[k], np.float32), dtype=dtype) for k in STAT_KEYS}
    return {**arrays, "mask": np.asarray(a["mask"], bool)}


def normalize(action, stats: dict, mode: str, xp=np):
    """Normalise the last axis of `action` (numpy or `tf.experimental.numpy` via `xp`), in its dtype.

    The formula is vla_runtime.policy_io.normalize_actions, the one the robot runtime inverts.
    """
    if mode not in MODES:
        raise DataError(f"normalization mode {mode!r}: choose one of {MODES}")
    if mode == "none":
        return action
    return policy_io.normalize_actions(action, _arrays(stats, xp, action.dtype), mode, xp)


def denormalize(action, stats: dict, mode: str, xp=np):
    """Inverse of `normalize` inside the training range, clipped to it (policy_io.denormalize_actions)."""
    if mode not in MODES:
        raise DataError(f"normalization mode {mode!r}: choose one of {MODES}")
    if mode == "none":
        return action
    return policy_io.denormalize_actions(action, _arrays(stats, xp, action.dtype), mode, xp)
