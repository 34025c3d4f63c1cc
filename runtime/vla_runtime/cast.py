"""Conversions on the robot step's path that cost nothing when there is nothing to convert.

`tensor.to(dtype)` / `.to(device)` return the tensor itself when it already is that dtype / on that device, but
only after torch's argument parsing and an operator dispatch, a few microseconds each on a robot CPU right after
the backbone has pushed that code out of the caches; a step made several such calls (measured by counting the
step's top-level operators, `bench/RESULTS.md` 4e session 13).
"""

from __future__ import annotations

import torch


def as_dtype(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """`tensor.to(dtype)`, skipped when it already has that dtype."""
    return tensor if tensor.dtype == dtype else tensor.to(dtype)


def on_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor.to(device)`, skipped when it is already there (`device` a `torch.device`)."""
    return tensor if tensor.device == device else tensor.to(device)
