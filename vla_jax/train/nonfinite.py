"""The loop's side of the finite-value guard: read each step's `finite` flag, stop or count.

The train step already refuses to apply a non-finite update (`vla_jax.train.step`),
so the state stays finite whatever happens. This module decides what the run
does about it (`config.on_nonfinite`):

* ``"stop"`` (default): the run ends with one line naming the first bad step,
  which of loss / gradient norm / update was non-finite, and the last saved
  checkpoint; nothing is saved after it.
* ``"skip"``: the update is dropped (params and optimizer state unchanged), one
  warning line names the step, and the count is logged with every metric line.

Flags are read one step late so the host still prepares batch k+1 while the
device runs step k; `flush` reads the pending one before anything is saved.
"""

from __future__ import annotations

import logging
from typing import Any

import jax
import numpy as np

from vla_jax.errors import VLAJaxError

log = logging.getLogger("vla_jax.train")
WATCHED = ("loss", "grad_norm", "update_norm")


class NonFiniteStop(VLAJaxError):
    """Training met a non-finite loss, gradient norm or update under ``on_nonfinite="stop"``."""


class NonFiniteGuard:
    def __init__(self, policy: str, last_checkpoint: int | None):
        self.policy = policy
        self.skipped = 0
        self.last_checkpoint = last_checkpoint
        self._pending: tuple[int, dict[str, Any]] | None = None

    def observe(self, step: int, metrics: dict[str, Any]) -> None:
        """Checks the previous step's flag, then remembers this one's (still on device)."""
        self.flush()
        self._pending = (step, {k: metrics[k] for k in ("finite", *WATCHED)})

    def flush(self) -> None:
        if self._pending is None:
            return
        step, values = self._pending
        self._pending = None
        if bool(jax.device_get(values["finite"])):
            return
        got = {k: float(np.asarray(jax.device_get(values[k]))) for k in WATCHED}
        bad = ", ".join(f"{k}={v}" for k, v in got.items() if not np.isfinite(v))
        if self.policy == "skip":
            self.skipped += 1
            log.warning(
                "step %d: non-finite %s; update skipped (params unchanged), %d skipped so far", step, bad, self.skipped
            )
            return
        where = (
            f"the last checkpoint (step {self.last_checkpoint}) is intact and finite"
            if self.last_checkpoint is not None
            else "no checkpoint was saved"
        )
        raise NonFiniteStop(
            f"step {step}: non-finite {bad}; training stopped and nothing was saved after it "
            f"({where}). Lower optimizer.learning_rate, check the data, or pass "
            "--config.on_nonfinite=skip to drop such updates and count them"
        )

    def saved(self, step: int) -> None:
        self.last_checkpoint = step
