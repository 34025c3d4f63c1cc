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

The convention travels in the statistics (`"gripper"`), so a runtime can map a predicted
openness back to the robot's own command range with `GripperConvention.from_canonical`.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from data_pipelines.errors import DataError

_SIDE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s+(open|opened|close|closed)\s*$")


@dataclasses.dataclass(frozen=True)
class GripperConvention:
    """Which raw value means fully open and which fully closed; values between are partial."""

    open_value: float
    closed_value: float

    @classmethod
    def parse(cls, text: str) -> GripperConvention:
        """`"[-1 open, +1 close]"` / `"[0 closed, 1 open]"` (either order, brackets optional)."""
        body = text.strip().removeprefix("[").removesuffix("]")
        sides = body.split(",")
        parsed = [_SIDE.match(s) for s in sides]
        if len(sides) != 2 or not all(parsed):
            raise DataError(
                f"gripper convention {text!r}: write it as '[<value> open, <value> closed]', "
                "e.g. '[0 closed, 1 open]' or '[-1 open, +1 close]'"
            )
        values = {m.group(2).startswith("open"): float(m.group(1)) for m in parsed if m}
        if len(values) != 2 or values[True] == values[False]:
            raise DataError(f"gripper convention {text!r}: name one distinct value for open and one for closed")
        return cls(open_value=values[True], closed_value=values[False])

    def __str__(self) -> str:
        lo, hi = sorted([(self.open_value, "open"), (self.closed_value, "closed")])
        return f"[{lo[0]:g} {lo[1]}, {hi[0]:g} {hi[1]}]"

    @property
    def is_canonical(self) -> bool:
        return (self.open_value, self.closed_value) == (1.0, 0.0)

    def to_canonical(self, g, xp=np):
        """Raw gripper values -> openness in [0, 1] (clipped: teleop overshoot is not 'more open')."""
        if self.is_canonical:
            return xp.clip(g, 0.0, 1.0)
        return xp.clip((g - self.closed_value) / (self.open_value - self.closed_value), 0.0, 1.0)

    def from_canonical(self, p, xp=np):
        """Openness in [0, 1] (e.g. the model's sigmoid) -> the robot's raw gripper command."""
        return self.closed_value + xp.clip(p, 0.0, 1.0) * (self.open_value - self.closed_value)


CANONICAL_GRIPPER = GripperConvention(open_value=1.0, closed_value=0.0)


@dataclasses.dataclass(frozen=True)
class ActionSpace:
    """`continuous` normalised dims, then (optionally) one gripper dim in the stated convention."""

    continuous: int
    gripper: GripperConvention | None = None

    def __post_init__(self):
        if isinstance(self.gripper, str):
            object.__setattr__(self, "gripper", GripperConvention.parse(self.gripper))
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
