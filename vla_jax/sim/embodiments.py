"""Robots other than the users' for the cross-embodiment pre-training set, in our navigation scene.

The target (`omni`, the default everywhere) is the users' robot and task: a holonomic
omniwheel base, front camera 0.32 m high pitched 15 degrees down with an 80 degree vertical
field of view, 2-D key-press actions [linear_x, linear_y], brown boxes (and a brown pot in
`variant` worlds), a grey basket, and the instruction "Navigate around the obstacle on the
{side} side and reach the target". `vla-jax demo` and `sim-eval` measure that task only.

Every other entry differs from it in the robot (camera mounting height, pitch and field of
view; holonomic or differential drive, so a different action space) AND in the scene
(obstacle set, goal marker, instruction wording), so a pre-training set built from them does
not contain the target task: no target-robot frame, no brown-box-and-grey-basket world, no
target instruction string. What they share with the target is what a cross-embodiment set
should teach: going around an obstacle on the side the instruction names and stopping at a
goal. `DIFFERENCES` says per robot exactly how it differs (docs/cross_embodiment.md shows it).

    vla-jax sim-collect --env mobile --embodiment diff_drive --episodes 96 --out xemb/diff_drive
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from vla_jax.errors import VLAJaxError
from vla_jax.sim.scenarios import INSTRUCTION_TEMPLATE, Layout, Obstacle


@dataclasses.dataclass(frozen=True)
class Embodiment:
    """One robot in the navigation scene and the variant of the scene it works in."""

    name: str
    camera_height: float = 0.32  # metres above the floor
    camera_forward: float = 0.12  # metres ahead of the base centre
    camera_pitch_deg: float = 15.0  # downwards
    camera_fovy_deg: float = 80.0  # vertical field of view
    # holonomic: [linear_x, linear_y] key presses (the users'); differential: [linear_x, 0, angular_z]
    # (a differential base cannot move sideways, so its collector's linear_y column is always 0).
    drive: str = "holonomic"
    instruction_template: str = INSTRUCTION_TEMPLATE
    obstacle_rgb: tuple[float, float, float] | None = None  # None = the users' brown (scenarios._brown)
    obstacle_kind: str | None = None  # None = as sampled; "pot" = every obstacle a cylinder
    obstacle_scale: float = 1.0  # footprint scale of every obstacle
    target_rgb: tuple[float, float, float] | None = None  # None = the users' grey basket
    target_distance_scale: float = 1.0  # start->goal distance relative to the users' tokens
    max_steps: int = 18

    def __post_init__(self):
        if self.drive not in ("holonomic", "differential"):
            raise VLAJaxError(f"embodiment {self.name}: drive={self.drive!r}; choose 'holonomic' or 'differential'")

    @property
    def action_dim(self) -> int:
        """Action columns the converted dataset keeps (`convert-episodes --action-dim`)."""
        return 2 if self.drive == "holonomic" else 3

    @property
    def is_target(self) -> bool:
        return self.name == TARGET

    def instruction(self, side: str) -> str:
        return self.instruction_template.format(side=side)

    def camera_xml(self) -> str:
        """The MJCF `<camera>` of the base: looks along its -z, x to the robot's right, pitched down."""
        p = math.radians(self.camera_pitch_deg)
        return (
            f'<camera name="front" pos="{self.camera_forward:g} 0 {self.camera_height:g}" '
            f'xyaxes="0 -1 0 {math.sin(p):.3f} 0 {math.cos(p):.3f}" fovy="{self.camera_fovy_deg:g}"/>'
        )

    def world(self, layout: Layout) -> Layout:
        """The sampled users' world turned into this embodiment's scene variant (identity for the target)."""
        if self.is_target:
            return layout
        rng = np.random.default_rng([layout.seed, 7])
        s = self.obstacle_scale
        obstacles = []
        for o in layout.obstacles:
            kind = self.obstacle_kind or o.kind
            hx, hy = o.half_x * s, o.half_y * s
            if kind == "pot":
                hx = hy = max(hx, hy)
            rgba = o.rgba
            if self.obstacle_rgb is not None:
                r, g, b = np.clip(np.asarray(self.obstacle_rgb) + rng.uniform(-0.05, 0.05, 3), 0.05, 0.95)
                rgba = (float(r), float(g), float(b), 1.0)
            obstacles.append(Obstacle(kind, o.x, o.y, hx, hy, o.height, rgba))
        tx, ty = layout.target_xy
        target_rgba = layout.target_rgba
        if self.target_rgb is not None:
            target_rgba = (self.target_rgb[0], self.target_rgb[1], self.target_rgb[2], 1.0)
        return dataclasses.replace(
            layout,
            obstacles=tuple(obstacles),
            target_xy=(tx * self.target_distance_scale, ty),
            target_rgba=target_rgba,
        )


TARGET = "omni"
EMBODIMENTS: dict[str, Embodiment] = {
    e.name: e
    for e in (
        Embodiment(TARGET),
        Embodiment(
            "low_wide",
            camera_height=0.16,
            camera_forward=0.15,
            camera_pitch_deg=5.0,
            camera_fovy_deg=100.0,
            instruction_template="Drive past the crate on its {side} side and stop at the goal",
            obstacle_rgb=(0.2, 0.35, 0.65),  # blue crates
            obstacle_kind="box",
            obstacle_scale=1.15,
            target_rgb=(0.2, 0.65, 0.25),  # green goal
        ),
        Embodiment(
            "mast_narrow",
            camera_height=0.75,
            camera_forward=0.0,
            camera_pitch_deg=35.0,
            camera_fovy_deg=55.0,
            instruction_template="Pass the barrel on the {side} and go to the marker",
            obstacle_rgb=(0.75, 0.45, 0.1),  # orange barrels
            obstacle_kind="pot",
            obstacle_scale=0.9,
            target_rgb=(0.75, 0.15, 0.15),  # red marker
            target_distance_scale=1.12,
        ),
        Embodiment(
            "diff_drive",
            camera_height=0.24,
            camera_forward=0.14,
            camera_pitch_deg=12.0,
            camera_fovy_deg=70.0,
            drive="differential",
            instruction_template="Steer around the {side} side of the block and park next to the bin",
            obstacle_rgb=(0.55, 0.55, 0.58),  # grey blocks
            obstacle_kind="box",
            target_rgb=(0.15, 0.3, 0.75),  # blue bin
            max_steps=40,
        ),
    )
}

DIFFERENCES: dict[str, str] = {
    TARGET: "the users' robot and task (the target; never in the pre-training set)",
    "low_wide": "camera 0.16 m high (target 0.32), pitch 5 deg (15), fov 100 deg (80); holonomic 2-D like the target; "
    "blue crates 15% larger (brown boxes/pot), green goal (grey basket), other wording",
    "mast_narrow": "camera on a 0.75 m mast at the base centre, pitch 35 deg, fov 55 deg; holonomic 2-D; every "
    "obstacle an orange barrel (cylinder), red goal 12% farther, other wording",
    "diff_drive": "differential drive: 3-D actions [linear_x, 0, angular_z] (cannot strafe; turns, up to 40 steps); "
    "camera 0.24 m, pitch 12 deg, fov 70 deg; grey blocks, blue bin, other wording",
}


def get(name: str) -> Embodiment:
    if name not in EMBODIMENTS:
        raise VLAJaxError(f"--embodiment {name!r} is unknown; choose one of {sorted(EMBODIMENTS)}")
    return EMBODIMENTS[name]
