"""Closed-loop evaluation: a policy drives the simulated robot; success, side, collisions, instruction sensitivity.

Any object with ``reset(instruction)`` and ``step(image) -> [C, A]`` (action
chunk in the robot's units) can be evaluated: the torch runtime's
``vla_runtime.Policy``, the JAX reference policy (`jax_policy.py`), or a test
double. Each control step the policy sees the current camera frame and the
first action of its chunk is held for 0.4 s (receding horizon; a policy that
ensembles chunks does so inside ``step``).

Episodes come in pairs: the same world (scenario tokens without the side, same
layout seed) once with "left" and once with "right" in the instruction. The
instruction-sensitivity score is the fraction of pairs where the robot passed
left when told left *and* right when told right: the users' models gave the same
action for both prompts, and this number exposes exactly that.

Evaluation worlds use layout seeds from a range `collect.py` never uses, so
they are held out from any collected training data.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from vla_jax.errors import VLAJaxError
from vla_jax.sim.env import MAX_STEPS, NavEnv
from vla_jax.sim.scenarios import Layout, Scenario, all_scenarios, sample_layout
from vla_jax.sim.success import Outcome

EVAL_SEED_OFFSET = 10_000_000  # collection layout seeds stay far below this


class Policy(Protocol):
    def reset(self, instruction: str) -> Any: ...

    def step(self, image: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass
class EpisodeResult:
    scenario: Scenario
    layout: Layout
    pair: int
    outcome: Outcome
    path: np.ndarray  # dense base path [N, 2]
    actions: np.ndarray  # executed actions [steps, A]
    frames: list[np.ndarray] | None = None  # RGB frames, only for episodes asked to be recorded

    def to_json(self) -> dict:
        return {
            "scenario": self.scenario.tokens,
            "layout_seed": self.layout.seed,
            "pair": self.pair,
            **dataclasses.asdict(self.outcome),
            "final_xy": [round(float(v), 3) for v in self.path[-1]],
        }


def eval_plan(num_episodes: int, seed: int) -> list[tuple[int, Scenario, int]]:
    """(pair index, scenario, layout seed) for `num_episodes` episodes: pairs differing only in the side."""
    if num_episodes < 2 or num_episodes % 2:
        raise VLAJaxError(f"--episodes {num_episodes} must be an even number >= 2 (episodes come in left/right pairs)")
    pairs = num_episodes // 2
    # Balanced over the 24 side-less worlds; each pass shuffled separately.
    worlds = [s for s in all_scenarios() if s.side == "left"]
    rng = np.random.default_rng([seed, 7])
    base: list[Scenario] = []
    while len(base) < pairs:
        base.extend(worlds[i] for i in rng.permutation(len(worlds)))
    plan = []
    for i in range(pairs):
        layout_seed = EVAL_SEED_OFFSET + seed * 10_000 + i
        for side in ("left", "right"):
            plan.append((i, base[i].with_side(side), layout_seed))
    return plan


def _frame_for_policy(rgb: np.ndarray, input_channel_order: str) -> np.ndarray:
    return np.ascontiguousarray(rgb[..., ::-1]) if input_channel_order == "BGR" else rgb


def run_episode(
    policy: Policy,
    scenario: Scenario,
    layout_seed: int,
    *,
    pair: int = 0,
    image_size: int = 224,
    max_steps: int = MAX_STEPS,
    input_channel_order: str = "RGB",
    record: bool = False,
) -> EpisodeResult:
    layout = sample_layout(scenario, layout_seed)
    policy.reset(scenario.instruction)
    actions, frames = [], []
    with NavEnv(layout, image_size=image_size, max_steps=max_steps) as env:
        image = env.render()
        while not env.done:
            assert image is not None  # NavEnv renders whenever it has an image_size
            if record:
                frames.append(image)
            chunk = np.asarray(policy.step(_frame_for_policy(image, input_channel_order)), dtype=np.float64)
            if chunk.ndim == 1:
                chunk = chunk[None]
            if chunk.ndim != 2 or chunk.shape[1] not in (2, 3):
                raise VLAJaxError(
                    f"policy.step returned shape {chunk.shape}; expected an action chunk [C, 2 or 3] in robot units"
                )
            actions.append(chunk[0])
            image, _ = env.step(chunk[0])
        if record:
            frames.append(image)
        return EpisodeResult(
            scenario,
            layout,
            pair,
            env.outcome(scenario.side),
            np.asarray(env.path),
            np.asarray(actions),
            frames if record else None,
        )


def evaluate(
    policy: Policy,
    num_episodes: int = 50,
    *,
    seed: int = 0,
    image_size: int = 224,
    max_steps: int = MAX_STEPS,
    input_channel_order: str = "RGB",
    record_episodes: int = 4,
    progress: bool = True,
) -> list[EpisodeResult]:
    """Run the paired evaluation; the first `record_episodes` episodes keep their frames (for GIFs)."""
    if input_channel_order not in ("RGB", "BGR"):
        raise VLAJaxError(f"channel order {input_channel_order!r} must be RGB or BGR")
    results = []
    plan = eval_plan(num_episodes, seed)
    for k, (pair, scenario, layout_seed) in enumerate(
        tqdm(plan, desc="sim-eval", unit="episode", disable=not progress)
    ):
        results.append(
            run_episode(
                policy,
                scenario,
                layout_seed,
                pair=pair,
                image_size=image_size,
                max_steps=max_steps,
                input_channel_order=input_channel_order,
                record=k < record_episodes,
            )
        )
    return results


def _rate(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def instruction_sensitivity(results: list[EpisodeResult]) -> float:
    """Fraction of left/right pairs where the passed side followed the instruction in both episodes."""
    by_pair: dict[int, dict[str, EpisodeResult]] = defaultdict(dict)
    for r in results:
        by_pair[r.pair][r.scenario.side] = r
    complete = [p for p in by_pair.values() if set(p) == {"left", "right"}]
    return _rate(p["left"].outcome.side == "left" and p["right"].outcome.side == "right" for p in complete)


def summarize(results: list[EpisodeResult]) -> dict:
    """Overall and per-scenario numbers (JSON-ready)."""

    def block(rs):
        return {
            "episodes": len(rs),
            "success": _rate(r.outcome.success for r in rs),
            "reached": _rate(r.outcome.reached for r in rs),
            "side_correct": _rate(r.outcome.side_correct for r in rs),
            "collisions": _rate(r.outcome.collided for r in rs),
            "mean_steps": _rate(r.outcome.steps for r in rs),
        }

    groups = {
        "layout": lambda s: s.layout_type,
        "distance": lambda s: s.distance,
        "side": lambda s: s.side,
        "kind": lambda s: s.kind,
    }
    per = {}
    for name, key in groups.items():
        buckets: dict[str, list] = defaultdict(list)
        for r in results:
            buckets[key(r.scenario)].append(r)
        per[name] = {k: block(v) for k, v in sorted(buckets.items())}
    return {
        "overall": block(results),
        "instruction_sensitivity": instruction_sensitivity(results),
        "per_scenario": per,
        "episodes": [r.to_json() for r in results],
    }


def format_table(summary: dict) -> str:
    """Plain-text table: overall, then one row per scenario group value."""
    header = f"{'group':<22}{'n':>4}{'success':>9}{'side ok':>9}{'collide':>9}{'steps':>7}"
    lines = [header, "-" * len(header)]

    def row(name, b):
        lines.append(
            f"{name:<22}{b['episodes']:>4}{b['success']:>9.0%}{b['side_correct']:>9.0%}"
            f"{b['collisions']:>9.0%}{b['mean_steps']:>7.1f}"
        )

    row("overall", summary["overall"])
    for group, blocks in summary["per_scenario"].items():
        for value, b in blocks.items():
            row(f"{group}={value}", b)
    lines.append(f"instruction sensitivity (left/right pairs): {summary['instruction_sensitivity']:.0%}")
    return "\n".join(lines)
