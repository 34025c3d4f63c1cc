"""The simulated robot: a holonomic base driven 0.4 s per key press, seen through its front camera.

The base and camera are the users' unless an `Embodiment` (vla_jax/sim/embodiments.py) says otherwise,
e.g. a differential-drive base that cannot strafe for the cross-embodiment pre-training set.

Dynamics are kinematic: each action is a body-frame velocity held for 0.4 s
and integrated in `substeps` pieces straight into the base's slide/hinge
joints; the render worker (`render_worker.py`, a child process) runs
`mj_forward` to place the camera and renders the frame. We chose this over velocity
actuators on the joints because the users' omniwheel base tracks its velocity
commands closely at these speeds, because a key press must move the robot the
same distance every time (the users' data are 0.4 s key presses), and because
it keeps an episode bit-for-bit deterministic and ~100x cheaper than simulating
wheel contacts. Collisions are judged geometrically on the dense path
(`success.py`), the same rule the evaluation uses; a collision ends the episode.

Action units are the users': ``[linear_x, linear_y(, angular_z)]`` key presses
of magnitude 1.15 (docs/mobile_episodes.md). Larger commands saturate at 1.15, as
the robot's motor limits would.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vla_jax.errors import VLAJaxError
from vla_jax.sim import render_worker, success
from vla_jax.sim.embodiments import EMBODIMENTS, TARGET, Embodiment
from vla_jax.sim.scenarios import Layout
from vla_jax.sim.scene import build_mjcf

KEY = 1.15  # one key press, the users' unit
SECONDS_PER_STEP = 0.4
LINEAR_SPEED_PER_UNIT = 0.4  # m/s per action unit: a key press moves 0.184 m in 0.4 s
ANGULAR_SPEED_PER_UNIT = 0.5  # rad/s per action unit
MAX_STEPS = 18


def drive(pose, action, kind: str = "holonomic", substeps: int = 8) -> np.ndarray:
    """Base poses [substeps, 3] (x, y, yaw) after each piece of one 0.4 s key press from `pose`.

    `action` [linear_x, linear_y(, angular_z)] is a body-frame velocity, saturated at one key;
    a differential base (`kind`) ignores linear_y, as it cannot strafe.
    """
    action = np.asarray(action, dtype=np.float64).reshape(-1)
    vx, vy = np.clip(action[:2], -KEY, KEY) * LINEAR_SPEED_PER_UNIT
    if kind == "differential":
        vy = 0.0
    wz = float(np.clip(action[2], -KEY, KEY)) * ANGULAR_SPEED_PER_UNIT if action.size == 3 else 0.0
    dt = SECONDS_PER_STEP / substeps
    x, y, yaw = (float(v) for v in pose)
    out = np.empty((substeps, 3))
    for i in range(substeps):
        c, s = np.cos(yaw), np.sin(yaw)
        x += (c * vx - s * vy) * dt
        y += (s * vx + c * vy) * dt
        yaw += wz * dt
        out[i] = (x, y, yaw)
    return out


@dataclasses.dataclass
class StepResult:
    reached: bool
    collided: bool
    done: bool


class NavEnv:
    """One episode's world. `reset()` then `step(action)` until `done`; `path` is the dense base path."""

    def __init__(
        self,
        layout: Layout,
        *,
        image_size: int = 224,
        max_steps: int = MAX_STEPS,
        substeps: int = 8,
        render: bool = True,
        embodiment: Embodiment | None = None,
    ):
        if image_size < 16 or image_size > 1024:
            raise VLAJaxError(f"--image-size {image_size} is out of range; use 16..1024 (e.g. 224)")
        self.layout = layout
        self.embodiment = embodiment or EMBODIMENTS[TARGET]
        self.image_size = image_size
        self.max_steps = max_steps
        self.substeps = substeps
        self._pose = np.zeros(3)
        self._handle = None
        if render:
            self._handle = render_worker.client().load(build_mjcf(layout, image_size, self.embodiment), image_size)
        self.reset()

    # -- state -----------------------------------------------------------------
    @property
    def pose(self) -> np.ndarray:
        """(x, y, yaw) of the base (the MJCF's base_x, base_y, base_yaw joint positions)."""
        return self._pose.copy()

    def _set_pose(self, pose) -> None:
        self._pose = np.asarray(pose, dtype=np.float64).copy()

    def reset(self) -> np.ndarray | None:
        self.steps = 0
        self.done = False
        self.reached = False
        self.collided = False
        self._set_pose((0.0, 0.0, 0.0))
        self.path = [np.zeros(2)]
        self.step_poses = [self.pose]
        return self.render()

    def render(self) -> np.ndarray | None:
        """RGB uint8 [H, W, 3] from the front camera (None when built without a renderer)."""
        if self._handle is None:
            return None
        return render_worker.client().render(self._handle, self._pose)

    # -- dynamics --------------------------------------------------------------
    def step(self, action) -> tuple[np.ndarray | None, StepResult]:
        if self.done:
            raise RuntimeError("step() after the episode ended; call reset()")
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.size not in (2, 3) or not np.all(np.isfinite(action)):
            raise VLAJaxError(
                f"action {action.tolist()} must be 2 or 3 finite numbers [linear_x, linear_y(, angular_z)]"
            )
        start = len(self.path)
        poses = drive(self.pose, action, self.embodiment.drive, self.substeps)
        self.path.extend(poses[:, :2])
        x, y, yaw = (float(v) for v in poses[-1])
        self.steps += 1
        new = np.asarray(self.path[start - 1 :])
        collision = success.first_collision(new, self.layout)
        arrival = success.first_arrival(new, self.layout)
        if collision is not None and (arrival is None or collision <= arrival):
            # The robot stops at the obstacle; nothing after the contact happened.
            del self.path[start - 1 + collision + 1 :]
            x, y = self.path[-1]
            self.collided = True
        elif arrival is not None:
            del self.path[start - 1 + arrival + 1 :]
            x, y = self.path[-1]
            self.reached = True
        self._set_pose((x, y, yaw))
        self.step_poses.append(self.pose)
        self.done = self.collided or self.reached or self.steps >= self.max_steps
        return self.render(), StepResult(self.reached, self.collided, self.done)

    def outcome(self, instructed_side: str) -> success.Outcome:
        return success.judge(np.asarray(self.path), self.layout, instructed_side, self.steps)

    def close(self) -> None:
        if self._handle is not None:
            render_worker.client().free(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
