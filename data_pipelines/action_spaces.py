"""Declared action spaces: any number of continuous dims plus an optional gripper with a stated convention.

A dataset's standardized action is `[continuous..., gripper]`. The continuous dims are
normalised with the dataset's statistics; the gripper is not (it is a binary-ish open/close
signal the model predicts with a BCE head), so every gripper is mapped to ONE canonical
convention before training: ``[0 closed, 1 open]`` (what `vla_jax.actions` and the heads
assume, and what Octo/OpenVLA standardize OXE to). A dataset states its own convention
as a short string and the pipeline converts, e.g.

    ActionSpace(continuous=3, gripper="[-1 open, +1 close]")   # Meta-World [dx, dy, dz, grip]
    ActionSpace(continuous=6, gripper="[0 closed, 1 open]")    # the OXE end-effector preset
    ActionSpace(continuous=2)                                  # a mobile base, no gripper

The convention travels in the statistics (`"gripper"`), through the export's statistics.json,
to the runtime: `vla_runtime.policy_io.ActionStatistics.denormalize` maps the model's opening back
with `GripperConvention.from_canonical`, so `Policy.step` returns the dataset's own convention.
`GripperConvention` is defined once, in `vla_runtime.policy_io` (the runtime needs it without this package).
"""

from __future__ import annotations

import dataclasses

from data_pipelines.errors import DataError
from vla_runtime.policy_io import CANONICAL_GRIPPER, GripperConvention

__all__ = ["CANONICAL_GRIPPER", "PRESETS", "ActionSpace", "GripperConvention", "parse_gripper", "resolve"]


def parse_gripper(text: str) -> GripperConvention:
    """A dataset's convention text -> `GripperConvention` (bad text is a `DataError`, named in the message)."""
    return GripperConvention.parse(text, DataError)


@dataclasses.dataclass(frozen=True)
class ActionSpace:
    """`continuous` normalised dims, then (optionally) one gripper dim in the stated convention."""

    continuous: int
    gripper: GripperConvention | None = None

    def __post_init__(self):
        if isinstance(self.gripper, str):
            object.__setattr__(self, "gripper", parse_gripper(self.gripper))
        if int(self.continuous) < 0 or (self.continuous == 0 and self.gripper is None):
            raise DataError(f"action space with {self.continuous} continuous dims and no gripper has no dims")

    @property
    def dim(self) -> int:
        return int(self.continuous) + (self.gripper is not None)

    @property
    def normalize_mask(self) -> list[bool]:
        """True = normalise with the dataset statistics; the gripper (already in [0, 1]) is left alone."""
        return [True] * int(self.continuous) + ([False] if self.gripper is not None else [])

    def describe(self) -> str:
        grip = f" + gripper {self.gripper}" if self.gripper is not None else ""
        return f"{self.continuous} continuous{grip}"


# Named presets (the enumeration this module replaces): OXE end effector and the mobile bases.
PRESETS: dict[str, ActionSpace] = {
    "eef7": ActionSpace(continuous=6, gripper=CANONICAL_GRIPPER),  # [dx, dy, dz, droll, dpitch, dyaw, open]
    "nav2": ActionSpace(continuous=2),  # [linear_x, linear_y]
    "nav3": ActionSpace(continuous=3),  # [linear_x, linear_y, angular_z]
}


def resolve(space: ActionSpace | str) -> ActionSpace:
    if isinstance(space, ActionSpace):
        return space
    if space not in PRESETS:
        raise DataError(
            f"action space {space!r}: choose a preset {sorted(PRESETS)} or declare "
            "ActionSpace(continuous=N, gripper='[0 closed, 1 open]')"
        )
    return PRESETS[space]
