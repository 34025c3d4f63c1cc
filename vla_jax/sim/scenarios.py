"""The users' scenario tokens and a seeded random layout for each scenario.

The users name every episode file after its scenario:
``{1box|2box}_{hori|vert}_{left|right}_{core|variant}_{close|medium|far}``
(docs/mobile_episodes.md). We lay the simulated world out from exactly these tokens
so that collected files look like theirs and closed-loop results can be
reported per scenario.

The *side* token is the instruction, not the scene: `sample_layout` never looks
at it, so an episode and its side-swapped twin share the same world, which is
what makes the instruction-sensitivity score (paired episodes) meaningful and
means a policy cannot read the side off the image.

World frame: x forward from the robot's start, y to the robot's left (ROS),
metres. The robot starts at the origin facing +x.
"""

from __future__ import annotations

import dataclasses
import itertools
import re

import numpy as np

from vla_jax.errors import VLAJaxError

BOXES = ("1box", "2box")
ORIENTATIONS = ("hori", "vert")
SIDES = ("left", "right")
KINDS = ("core", "variant")
DISTANCES = ("close", "medium", "far")

# Nominal start->target distance per distance token; `variant` episodes get a
# wider jitter around it (the users' "variant" runs are the less controlled ones).
_TARGET_X = {"close": 1.75, "medium": 2.1, "far": 2.45}

INSTRUCTION_TEMPLATE = "Navigate around the obstacle on the {side} side and reach the target"


@dataclasses.dataclass(frozen=True)
class Scenario:
    boxes: str = "1box"
    orientation: str = "hori"
    side: str = "left"
    kind: str = "core"
    distance: str = "medium"

    def __post_init__(self):
        for value, allowed, name in (
            (self.boxes, BOXES, "boxes"),
            (self.orientation, ORIENTATIONS, "orientation"),
            (self.side, SIDES, "side"),
            (self.kind, KINDS, "kind"),
            (self.distance, DISTANCES, "distance"),
        ):
            if value not in allowed:
                raise VLAJaxError(f"scenario {name}={value!r} is not one of {allowed}; fix the scenario token")

    @property
    def tokens(self) -> str:
        """Filename tokens in the users' order, e.g. ``1box_hori_left_core_close``."""
        return f"{self.boxes}_{self.orientation}_{self.side}_{self.kind}_{self.distance}"

    @property
    def layout_type(self) -> str:
        """Value of the users' ``obstacle_layout_type`` attribute."""
        return f"{self.boxes}_{self.orientation}"

    @property
    def instruction(self) -> str:
        """The fixed evaluation instruction (docs/mobile_episodes.md: evaluation uses one fixed phrasing)."""
        return instruction_for_side(self.side)

    def with_side(self, side: str) -> Scenario:
        return dataclasses.replace(self, side=side)

    def swapped(self) -> Scenario:
        return self.with_side("right" if self.side == "left" else "left")

    @classmethod
    def from_tokens(cls, text: str) -> Scenario:
        """Parse ``1box_hori_left_core_close`` (or a whole episode filename)."""
        found = {}
        for part in re.split(r"[_.]", text):
            for name, allowed in (
                ("boxes", BOXES),
                ("orientation", ORIENTATIONS),
                ("side", SIDES),
                ("kind", KINDS),
                ("distance", DISTANCES),
            ):
                if part in allowed:
                    found[name] = part
        missing = [n for n in ("boxes", "orientation", "side", "kind", "distance") if n not in found]
        if missing:
            raise VLAJaxError(f"scenario {text!r} lacks the token(s) {missing}; use e.g. 1box_hori_left_core_close")
        return cls(**found)


def instruction_for_side(side: str) -> str:
    return INSTRUCTION_TEMPLATE.format(side=side)


def all_scenarios() -> list[Scenario]:
    """The 48 combinations of the users' tokens, in a fixed order."""
    return [Scenario(*combo) for combo in itertools.product(BOXES, ORIENTATIONS, SIDES, KINDS, DISTANCES)]


def scenario_schedule(num_episodes: int, seed: int) -> list[Scenario]:
    """`num_episodes` scenarios that cover all 48 combinations as evenly as possible.

    Each pass over the 48 combinations is shuffled separately, so any
    chronological prefix (the users' train/val split is by filename order) is
    close to balanced in side, layout and distance.
    """
    rng = np.random.default_rng(seed)
    combos = all_scenarios()
    schedule: list[Scenario] = []
    while len(schedule) < num_episodes:
        schedule.extend(combos[i] for i in rng.permutation(len(combos)))
    return schedule[:num_episodes]


@dataclasses.dataclass(frozen=True)
class Obstacle:
    """A brown obstacle's footprint: an axis-aligned box (half sizes) or a round pot (radius)."""

    kind: str  # "box" | "pot"
    x: float
    y: float
    half_x: float  # box: half extent along x; pot: radius
    half_y: float  # box: half extent along y; pot: radius
    height: float
    rgba: tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class Layout:
    """Everything random about one world; a pure function of (scenario without side, seed)."""

    scenario: Scenario
    seed: int
    target_xy: tuple[float, float]
    target_radius: float
    target_rgba: tuple[float, float, float, float]
    obstacles: tuple[Obstacle, ...]
    floor_rgba: tuple[float, float, float, float]
    light_dir: tuple[float, float, float]
    light_diffuse: float

    @property
    def obstacle_bounds(self) -> tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) of all obstacle footprints together."""
        xs = [(o.x - o.half_x, o.x + o.half_x) for o in self.obstacles]
        ys = [(o.y - o.half_y, o.y + o.half_y) for o in self.obstacles]
        return (min(a for a, _ in xs), max(b for _, b in xs), min(a for a, _ in ys), max(b for _, b in ys))

    @property
    def obstacle_center(self) -> tuple[float, float]:
        x0, x1, y0, y1 = self.obstacle_bounds
        return ((x0 + x1) / 2, (y0 + y1) / 2)


def _brown(rng: np.random.Generator, variant: bool) -> tuple[float, float, float, float]:
    spread = 0.12 if variant else 0.05
    base = np.array([0.45, 0.28, 0.14]) + rng.uniform(-spread, spread, 3)
    r, g, b = (float(c) for c in np.clip(base, 0.05, 0.95))
    return (r, g, b, 1.0)


def sample_layout(scenario: Scenario, seed: int) -> Layout:
    """A seeded random world for `scenario`; identical for both sides (see module doc)."""
    # The side is deliberately not part of the RNG key.
    key = [
        seed,
        BOXES.index(scenario.boxes),
        ORIENTATIONS.index(scenario.orientation),
        KINDS.index(scenario.kind),
        DISTANCES.index(scenario.distance),
    ]
    rng = np.random.default_rng(key)
    variant = scenario.kind == "variant"
    jitter = 2.0 if variant else 1.0
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731

    target_x = _TARGET_X[scenario.distance] + u(-0.06, 0.06) * jitter
    target_y = u(-0.05, 0.05) * jitter
    center_x = target_x * u(0.42, 0.5)
    center_y = u(-0.04, 0.04) * jitter

    obstacles: list[Obstacle] = []
    if scenario.boxes == "1box":
        if scenario.orientation == "hori":  # long side across the path
            hx, hy = u(0.1, 0.14), u(0.26, 0.34)
        else:  # long side along the path
            hx, hy = u(0.26, 0.34), u(0.1, 0.14)
        obstacles.append(Obstacle("box", center_x, center_y, hx, hy, u(0.25, 0.4), _brown(rng, variant)))
    else:
        sizes = [(u(0.09, 0.13), u(0.11, 0.15)) for _ in range(2)]
        gap = u(0.0, 0.06)
        # In `variant` worlds one of the two obstacles is the users' brown pot.
        kinds = ["box", "pot"] if variant else ["box", "box"]
        if scenario.orientation == "hori":  # side by side across the path
            offsets = [(0.0, sizes[0][1] + gap / 2), (0.0, -(sizes[1][1] + gap / 2))]
        else:  # one behind the other along the path
            offsets = [(-(sizes[0][0] + gap / 2), 0.0), (sizes[1][0] + gap / 2, 0.0)]
        for kind, (hx, hy), (dx, dy) in zip(kinds, sizes, offsets):
            if kind == "pot":
                hx = hy = min(hx, hy) + 0.02
            obstacles.append(Obstacle(kind, center_x + dx, center_y + dy, hx, hy, u(0.2, 0.35), _brown(rng, variant)))

    gray = u(0.45, 0.7)
    floor = u(0.55, 0.8)
    return Layout(
        scenario=scenario.with_side("left"),  # canonical: the layout carries no side
        seed=seed,
        target_xy=(target_x, target_y),
        target_radius=u(0.14, 0.18),
        target_rgba=(gray, gray, gray + u(-0.03, 0.03), 1.0),
        obstacles=tuple(obstacles),
        floor_rgba=(floor, floor * u(0.95, 1.0), floor * u(0.88, 0.98), 1.0),
        light_dir=(u(-0.3, 0.3), u(-0.3, 0.3), -1.0),
        light_diffuse=u(0.55, 0.9) if variant else u(0.65, 0.8),
    )
