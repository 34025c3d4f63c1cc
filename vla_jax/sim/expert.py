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
from vla_jax.sim.env import KEY, LINEAR_SPEED_PER_UNIT, SECONDS_PER_STEP, drive
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


class DiffDriveExpert:
    """Key presses for a differential base (`drive="differential"`): turn toward a waypoint, then drive.

    Waypoints: beside the obstacle group on the instructed side (before it), past it on that
    side, then the basket. Each step presses angular_z to face the waypoint when the heading
    error is large, linear_x (plus a turn key when moderately off) otherwise, and never a
    linear_y key; a forward press that would break the safety margin becomes a turn toward
    the instructed side instead.
    """

    TURN_ONLY = 0.35  # rad of heading error above which the base turns in place
    TURN_WHILE_DRIVING = 0.12

    def __init__(self, layout: Layout, side: str):
        self.layout = layout
        self.sign = 1.0 if side == "left" else -1.0
        x0, x1, y0, y1 = layout.obstacle_bounds
        clear_y = (y1 + ROBOT_RADIUS + 2 * MARGIN) if side == "left" else (y0 - ROBOT_RADIUS - 2 * MARGIN)
        self.waypoints = [
            np.array([x0 - ROBOT_RADIUS - 0.1, clear_y]),
            np.array([x1 + ROBOT_RADIUS + MARGIN, clear_y]),
            np.asarray(layout.target_xy, dtype=np.float64),
        ]

    def _safe(self, pose, action) -> bool:
        path = drive(pose, action, "differential")[:, :2]
        return bool(success.clearance(path, self.layout).min() >= MARGIN * 0.5)

    def act(self, pose) -> np.ndarray:
        """Key presses [linear_x, 0, angular_z] for the current base pose."""
        pose = np.asarray(pose, dtype=np.float64)
        while len(self.waypoints) > 1 and (
            np.hypot(*(self.waypoints[0] - pose[:2])) < STEP_LENGTH or pose[0] >= self.waypoints[0][0]
        ):
            self.waypoints.pop(0)
        dx, dy = self.waypoints[0] - pose[:2]
        error = float(np.arctan2(dy, dx) - pose[2])
        error = (error + np.pi) % (2 * np.pi) - np.pi
        turn = KEY * float(np.sign(error))
        if abs(error) > self.TURN_ONLY:
            return np.array([0.0, 0.0, turn], dtype=np.float32)
        action = np.array([KEY, 0.0, turn if abs(error) > self.TURN_WHILE_DRIVING else 0.0])
        if not self._safe(pose, action):
            action = np.array([0.0, 0.0, KEY * self.sign])
        return action.astype(np.float32)
