"""What the runtime checks on tensors so that nothing non-finite reaches the robot.

* `finite_tensors`: every weight of an export is finite (`Policy.load`, `vla-runtime info`, and the
  exporter at the export dtype).
* `finite_action`: the last gate of `Policy.step`: a chunk with a NaN or an infinity raises
  `NonFiniteActionError` instead of being returned.

The checks on the export's JSON live where those files are read, in `policy_io`: action statistics
are finite and ordered (`ActionStatistics.check`, run by `from_dict`), and the token layout takes
only real integers (`strict_int`).
"""

from __future__ import annotations

from collections.abc import Mapping

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


def finite_action(chunk: np.ndarray, step: int) -> np.ndarray:
    if not np.isfinite(chunk).all():
        rows, dims = np.nonzero(~np.isfinite(chunk))
        raise NonFiniteActionError(
            f"step {step}: the policy produced a non-finite action (chunk row {int(rows[0])}, dim {int(dims[0])}); "
            "nothing was returned: stop the robot, then reset() the episode (the history holds the bad state)"
        )
    return chunk
