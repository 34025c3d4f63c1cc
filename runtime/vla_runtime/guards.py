"""What the runtime checks so that nothing non-finite or nonsensical reaches the robot.

* `finite_tensors`: every weight of an export is finite (`Policy.load`, `vla-runtime info`).
* `check_statistics`: action statistics are finite and ordered (min <= max, q01 <= q99, std >= 0);
  NaN statistics would turn every action into NaN, and clipping to [min, max] does not stop NaN.
* `finite_action`: the last gate of `Policy.step`: a chunk with a NaN or an infinity raises
  `NonFiniteActionError` instead of being returned.
* `strict_int`: a JSON integer that is really an integer (``true`` is not 1, ``"3"`` is not 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict

import numpy as np
import torch

from .errors import NonFiniteActionError, RuntimeConfigError


def finite_tensors(tensors: Mapping[str, torch.Tensor], where: str) -> None:
    """Raises `RuntimeConfigError` naming the first tensor holding a NaN or an infinity."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise RuntimeConfigError(
                f"{where}: tensor {name} holds {bad} non-finite value(s) (NaN/inf); "
                "the model that was exported is broken: re-export a finite checkpoint"
            )


def check_statistics(stats: Any, where: str = "statistics.json") -> None:
    """``stats``: an `ActionStatistics`. Raises `RuntimeConfigError` naming the key and dimension."""
    for key in ("mean", "std", "min", "max", "q01", "q99"):
        values = np.asarray(getattr(stats, key), dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise RuntimeConfigError(
                f"{where}: action {key}[{int(bad[0])}] is {values[bad[0]]}; statistics must be "
                "finite: recompute them (vla-jax stats) and re-export"
            )
    for low, high in (("min", "max"), ("q01", "q99")):
        lo, hi = np.asarray(getattr(stats, low)), np.asarray(getattr(stats, high))
        wrong = np.flatnonzero(lo > hi)
        if wrong.size:
            i = int(wrong[0])
            raise RuntimeConfigError(
                f"{where}: action {low}[{i}]={lo[i]:g} is above {high}[{i}]={hi[i]:g}; "
                "recompute the statistics and re-export"
            )
    negative = np.flatnonzero(np.asarray(stats.std) < 0)
    if negative.size:
        raise RuntimeConfigError(f"{where}: action std[{int(negative[0])}] is negative; recompute the statistics")


def finite_action(chunk: np.ndarray, step: int) -> np.ndarray:
    if not np.isfinite(chunk).all():
        rows, dims = np.nonzero(~np.isfinite(chunk))
        raise NonFiniteActionError(
            f"step {step}: the policy produced a non-finite action (chunk row {int(rows[0])}, dim {int(dims[0])}); "
            "nothing was returned: stop the robot, then reset() the episode (the history holds the bad state)"
        )
    return chunk


def strict_int(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuntimeConfigError(f"{where}: {key!r} must be an integer, got {value!r}; re-export the folder")
    return value


def strict_ints(block: Dict, where: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in block:
            strict_int(block[key], where, key)
