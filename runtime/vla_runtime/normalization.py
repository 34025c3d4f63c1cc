"""Action statistics and (de-)normalisation: the model speaks normalised units, the robot its own.

`statistics.json` in an export holds one dataset's action statistics (what the
training data loader used) and its normalisation mode:

    {"dataset": NAME, "normalization": "bounds" | "bounds_q99" | "normal" | "none",
     "action": {"mean": [A], "std": [A], "min": [A], "max": [A], "q01": [A], "q99": [A], "mask": [A]}}

`mask[i]` false means dimension i was never normalised (a gripper in [0, 1]):
it is passed through unchanged in both directions. De-normalised actions are
clipped to the range the training data covered, so a model can never command
more than the robot was ever seen doing.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .errors import RuntimeConfigError

MODES = ("bounds", "bounds_q99", "normal", "none")
# The same formulas and guard as data_pipelines/statistics.py (a constant dim: max == min, std == 0).
EPS = 1e-8


@dataclasses.dataclass(frozen=True)
class ActionStatistics:
    mode: str
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    q01: np.ndarray
    q99: np.ndarray
    mask: np.ndarray  # bool [A]
    dataset: str = ""

    @classmethod
    def from_dict(cls, d: dict, where: str = "statistics.json") -> ActionStatistics:
        mode = d.get("normalization")
        if mode not in MODES:
            raise RuntimeConfigError(
                f"{where}: 'normalization' is {mode!r}; expected one of {MODES}. Re-export with vla-jax export."
            )
        act = d.get("action")
        if not isinstance(act, dict):
            raise RuntimeConfigError(f"{where}: missing the 'action' statistics block; re-export with vla-jax export.")
        fields: dict[str, np.ndarray] = {}
        for key in ("mean", "std", "min", "max", "q01", "q99"):
            if key not in act:
                raise RuntimeConfigError(f"{where}: action statistics lack {key!r}; re-export with vla-jax export.")
            fields[key] = np.asarray(act[key], dtype=np.float64)
        dims = {v.shape for v in fields.values()}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise RuntimeConfigError(f"{where}: action statistics must all be 1-D of the same length, got {dims}.")
        a = fields["mean"].shape[0]
        mask = np.asarray(act.get("mask", [True] * a), dtype=bool)
        if mask.shape != (a,):
            raise RuntimeConfigError(f"{where}: 'mask' has shape {mask.shape}, expected ({a},).")
        return cls(mode=mode, mask=mask, dataset=str(d.get("dataset", "")), **fields)

    def to_dict(self) -> dict:
        def lst(x: np.ndarray) -> list:
            return np.asarray(x).tolist()

        return {
            "dataset": self.dataset,
            "normalization": self.mode,
            "action": {
                "mean": lst(self.mean),
                "std": lst(self.std),
                "min": lst(self.min),
                "max": lst(self.max),
                "q01": lst(self.q01),
                "q99": lst(self.q99),
                "mask": lst(self.mask),
            },
        }

    @property
    def action_dim(self) -> int:
        return int(self.mean.shape[0])

    def _low_high(self):
        if self.mode == "bounds_q99":
            return self.q01, self.q99
        return self.min, self.max

    def normalize(self, action: np.ndarray) -> np.ndarray:
        """Robot units -> model units (what training targets looked like); float64 math."""
        x = np.asarray(action, dtype=np.float64)
        if self.mode == "none":
            return x
        if self.mode == "normal":
            y = (x - self.mean) / (self.std + EPS)
        else:
            lo, hi = self._low_high()
            y = np.clip(2.0 * (x - lo) / np.maximum(hi - lo, EPS) - 1.0, -1.0, 1.0)
        return np.where(self.mask, y, x)

    def denormalize(self, action: np.ndarray) -> np.ndarray:
        """Model units -> robot units, clipped to the range seen in training; masked dims untouched."""
        y = np.asarray(action, dtype=np.float64)
        if self.mode in ("normal", "none"):
            x = y * (self.std + EPS) + self.mean if self.mode == "normal" else y
            lo, hi = self.min, self.max
        else:
            lo, hi = self._low_high()
            x = (np.clip(y, -1.0, 1.0) + 1.0) / 2.0 * np.maximum(hi - lo, EPS) + lo
        x = np.clip(x, lo, hi)
        return np.where(self.mask, x, y)
