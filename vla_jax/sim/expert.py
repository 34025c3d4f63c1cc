"""Scripted expert that drives like the users' teleoperators: discrete key presses only.

It knows the world (privileged: obstacle footprints, basket position) and the
instructed side, and each step presses forward and/or sideways keys
(``{-1.15, 0, +1.15}`` per axis, angular_z never): sidestep toward the
instructed side until the robot clears the obstacle group, drive past it, then
close in on the basket. Before pressing forward it checks that the next 0.4 s
keeps a safety margin to every obstacle, so it never cuts the corner.
"""

from __future__ import annotations

import numpy as np

from vla_jax.sim import success
from vla_jax.sim.env import KEY, LINEAR_SPEED_PER_UNIT, SECONDS_PER_STEP
from vla_jax.sim.scenarios import Layout
from vla_jax.sim.scene import ROBOT_RADIUS

STEP_LENGTH = KEY * LINEAR_SPEED_PER_UNIT * SECONDS_PER_STEP  # metres per key press
MARGIN = 0.05  # metres of free space the expert keeps to obstacles


class ScriptedExpert:
    def __init__(self, layout: Layout, side: str):
        self.layout = layout
        self.sign = 1.0 if side == "left" else -1.0
        x0, x1, y0, y1 = layout.obstacle_bounds
        # Lateral line that clears the whole group on the instructed side.
        self.clear_y = (y1 + ROBOT_RADIUS + MARGIN) if side == "left" else (y0 - ROBOT_RADIUS - MARGIN)
        self.pass_x = x1 + ROBOT_RADIUS + MARGIN

    def _safe(self, xy: np.ndarray, action: np.ndarray) -> bool:
        """Whether holding `action` for one step from `xy` keeps `MARGIN` to every obstacle."""
        t = np.linspace(0.0, 1.0, 9)[:, None]
        path = xy[None, :] + t * action[None, :2] * LINEAR_SPEED_PER_UNIT * SECONDS_PER_STEP
        return bool(success.clearance(path, self.layout).min() >= MARGIN * 0.5)

    def act(self, pose) -> np.ndarray:
        """Key presses [linear_x, linear_y, angular_z] for the current base pose (yaw stays 0)."""
        xy = np.asarray(pose[:2], dtype=np.float64)
        x, y = xy
        tx, ty = self.layout.target_xy
        if x < self.pass_x:
            side_key = KEY * self.sign if self.sign * (self.clear_y - y) > 0 else 0.0
            for candidate in ((KEY, side_key), (0.0, side_key), (KEY, 0.0)):
                action = np.array(candidate)
                if np.any(action) and self._safe(xy, action):
                    return np.array([action[0], action[1], 0.0], dtype=np.float32)
            # Boxed in (should not happen): back off.
            return np.array([-KEY, 0.0, 0.0], dtype=np.float32)
        ax = KEY if tx - x > STEP_LENGTH * 0.5 else (-KEY if x - tx > STEP_LENGTH * 0.5 else 0.0)
        ay = KEY if ty - y > STEP_LENGTH * 0.5 else (-KEY if y - ty > STEP_LENGTH * 0.5 else 0.0)
        action = np.array([ax, ay])
        if np.any(action) and not self._safe(xy, action):
            action = np.array([ax, 0.0])
        return np.array([action[0], action[1], 0.0], dtype=np.float32)
