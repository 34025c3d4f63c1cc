"""Did an episode succeed? Reach the basket region, no collision, obstacle passed on the instructed side.

Pure 2-D geometry on the robot's densely sampled path (the simulator records
the base position several times per 0.4 s step), so the rules can be tested on
hand-made trajectories and the simulator, the expert and the evaluation all use
the same definition.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vla_jax.sim.scenarios import Layout, Obstacle
from vla_jax.sim.scene import ROBOT_RADIUS

# Robot centre within this distance of the basket centre counts as arrived
# (basket radius ~0.16 + robot radius 0.17: the robot is next to the basket).
TARGET_REGION = 0.38


def obstacle_distance(points: np.ndarray, obstacle: Obstacle) -> np.ndarray:
    """Distance from each point [N, 2] to the obstacle's footprint (0 inside)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    dx = points[:, 0] - obstacle.x
    dy = points[:, 1] - obstacle.y
    if obstacle.kind == "pot":
        return np.maximum(np.hypot(dx, dy) - obstacle.half_x, 0.0)
    ox = np.maximum(np.abs(dx) - obstacle.half_x, 0.0)
    oy = np.maximum(np.abs(dy) - obstacle.half_y, 0.0)
    return np.hypot(ox, oy)


def clearance(points: np.ndarray, layout: Layout) -> np.ndarray:
    """Free distance between the robot's edge and the nearest obstacle, per point (negative = overlap)."""
    dists = np.stack([obstacle_distance(points, o) for o in layout.obstacles])
    return dists.min(axis=0) - ROBOT_RADIUS


def first_collision(path: np.ndarray, layout: Layout) -> int | None:
    """Index of the first path point where the robot's disc overlaps an obstacle."""
    hits = np.flatnonzero(clearance(path, layout) < 0.0)
    return int(hits[0]) if hits.size else None


def first_arrival(path: np.ndarray, layout: Layout, region: float = TARGET_REGION) -> int | None:
    path = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    inside = np.flatnonzero(np.hypot(*(path - np.asarray(layout.target_xy)).T) <= region)
    return int(inside[0]) if inside.size else None


def passing_side(path: np.ndarray, layout: Layout) -> str | None:
    """'left' / 'right' of the obstacle group where the path first crosses its centre line; None if never.

    "Left" is the robot's left when it starts (world +y). The crossing point is
    linearly interpolated between the two path samples around it.
    """
    path = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    cx, cy = layout.obstacle_center
    ahead = path[:, 0] >= cx
    crossings = np.flatnonzero(ahead[1:] & ~ahead[:-1])
    if ahead[0] or not crossings.size:
        return None
    i = int(crossings[0])
    (x0, y0), (x1, y1) = path[i], path[i + 1]
    y = y0 + (y1 - y0) * (cx - x0) / (x1 - x0)
    return "left" if y > cy else "right"


@dataclasses.dataclass(frozen=True)
class Outcome:
    success: bool
    reached: bool
    collided: bool
    side: str | None  # side actually passed, None if the robot never got past the obstacle
    side_correct: bool
    steps: int  # control steps used


def judge(path: np.ndarray, layout: Layout, instructed_side: str, steps: int, region: float = TARGET_REGION) -> Outcome:
    """Outcome of one episode; anything after the first arrival or collision is ignored."""
    path = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    arrival = first_arrival(path, layout, region)
    collision = first_collision(path, layout)
    end = len(path)
    if arrival is not None:
        end = min(end, arrival + 1)
    if collision is not None:
        end = min(end, collision + 1)
    path = path[:end]
    reached = arrival is not None and (collision is None or arrival < collision)
    collided = collision is not None and (arrival is None or collision <= arrival)
    side = passing_side(path, layout)
    side_correct = side == instructed_side
    return Outcome(
        success=bool(reached and not collided and side_correct),
        reached=bool(reached),
        collided=bool(collided),
        side=side,
        side_correct=bool(side_correct),
        steps=int(steps),
    )
