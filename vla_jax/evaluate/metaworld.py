"""Closed-loop Meta-World evaluation on the published protocol: success per task and per difficulty group.

Protocol (LeRobot's `lerobot-eval` for Meta-World, the one behind the SmolVLA
paper's MT50 table): 10 episodes per task, each from a fresh seeded reset (new
object and goal positions), on seeds disjoint from collection
(`tasks.episode_seed("eval", ...)`); an episode succeeds if `info["success"]`
holds at any step within Meta-World's limit of 500 steps (`max_path_length`).
A group's success is the mean over its tasks; the published "average" is the
mean of the four group numbers, which we report the same way.

The policy is anything with ``reset(instruction)`` and ``step(frame) -> [C, A]``
in dataset units: the robot's `vla_runtime.Policy` for an export, or the JAX
reference policy for a workdir (`vla_jax/evaluate/policies.py`). Each step the first
action of the chunk is executed (receding horizon).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tqdm import tqdm

from vla_jax.errors import VLAJaxError
from vla_jax.sim.metaworld.tasks import DIFFICULTY, GROUP_ORDER, episode_seed
from vla_jax.sim.metaworld.worker import RemoteTaskEnv

EPISODES_PER_TASK = 10


def to_metaworld_action(action: np.ndarray) -> np.ndarray:
    """A policy's action -> the [dx, dy, dz, gripper effort] Meta-World executes, clipped to its [-1, 1] box.

    The policy already returns Meta-World's layout and convention (effort -1 opens, +1 closes): the
    registry's `metaworld` dataset declares `ActionSpace(continuous=3, gripper="[-1 open, +1 close]")`
    and the export's statistics carry the convention to `vla_runtime` (and the JAX reference policy).
    """
    a = np.asarray(action, np.float64).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise VLAJaxError(f"the policy returned a non-finite action {a.tolist()}; nothing non-finite is executed")
    if a.shape != (4,):
        raise VLAJaxError(
            f"policy action has {a.shape[0]} dims; a Meta-World policy returns 4 ([dx, dy, dz, gripper]): "
            "train on the registry's metaworld dataset with model.action_dim=4"
        )
    return np.clip(a, -1.0, 1.0)


@dataclasses.dataclass
class EpisodeResult:
    task: str
    seed: int
    success: bool
    steps: int  # steps until the first success, else steps run
    frames: list[np.ndarray] | None = None

    @property
    def difficulty(self) -> str:
        return DIFFICULTY[self.task]

    def to_json(self) -> dict:
        return {
            "task": self.task,
            "difficulty": self.difficulty,
            "seed": self.seed,
            "success": self.success,
            "steps": self.steps,
        }


def _frame_for_policy(rgb: np.ndarray, input_channel_order: str) -> np.ndarray:
    return np.ascontiguousarray(rgb[..., ::-1]) if input_channel_order == "BGR" else rgb


def run_episode(
    policy, env, seed: int, *, max_steps: int, input_channel_order: str = "RGB", record: bool = False
) -> EpisodeResult:
    """One episode of `policy` in `env` (a `worker.RemoteTaskEnv`) from `reset(seed)`."""
    frame, _ = env.reset(seed)
    policy.reset(env.instruction)
    frames = [frame] if record else None
    for t in range(max_steps):
        chunk = np.asarray(policy.step(_frame_for_policy(frame, input_channel_order)))
        if chunk.ndim == 1:
            chunk = chunk[None]
        frame, _, success, truncated = env.step(to_metaworld_action(chunk[0]))
        if frames is not None:
            frames.append(frame)
        if success:
            return EpisodeResult(env.task, seed, True, t + 1, frames)
        if truncated:
            break
    return EpisodeResult(env.task, seed, False, t + 1, frames)


def evaluate(
    policy,
    tasks: list[str],
    *,
    episodes_per_task: int = EPISODES_PER_TASK,
    seed: int = 0,
    image_size: int = 224,
    camera: str = "corner2",
    max_steps: int | None = None,
    input_channel_order: str = "RGB",
    record_tasks: int = 4,
    progress: bool = True,
) -> list[EpisodeResult]:
    """All episodes, task by task; the first episode of the first `record_tasks` tasks keeps its frames."""
    if episodes_per_task < 1:
        raise VLAJaxError(f"--episodes-per-task {episodes_per_task}: must be at least 1")
    if max_steps is not None and max_steps < 1:
        raise VLAJaxError(f"--max-steps {max_steps}: must be at least 1")
    results = []
    bar = tqdm(total=len(tasks) * episodes_per_task, desc="sim-eval metaworld", unit="episode", disable=not progress)
    for i, task in enumerate(tasks):
        with RemoteTaskEnv(task, image_size, camera) as env:
            limit = env.max_steps if max_steps is None else min(int(max_steps), env.max_steps)
            for k in range(episodes_per_task):
                results.append(
                    run_episode(
                        policy,
                        env,
                        episode_seed("eval", seed, task, k),
                        max_steps=limit,
                        input_channel_order=input_channel_order,
                        record=(k == 0 and i < record_tasks),
                    )
                )
                bar.update(1)
    bar.close()
    return results


def summarize(results: list[EpisodeResult]) -> dict:
    """Success per task, per difficulty group (mean over its tasks) and the published-style average."""
    per_task: dict[str, list[EpisodeResult]] = {}
    for r in results:
        per_task.setdefault(r.task, []).append(r)
    tasks = {
        t: {
            "difficulty": DIFFICULTY[t],
            "episodes": len(rs),
            "success": float(np.mean([r.success for r in rs])),
            "mean_steps": float(np.mean([r.steps for r in rs])),
        }
        for t, rs in per_task.items()
    }
    groups = {}
    for g in GROUP_ORDER:
        rates = [v["success"] for v in tasks.values() if v["difficulty"] == g]
        if rates:
            groups[g] = {"tasks": len(rates), "success": float(np.mean(rates))}
    return {
        "per_task": tasks,
        "per_difficulty": groups,
        # The published MT50 "average" is the mean of the four group numbers (e.g. SmolVLA:
        # (82.5 + 41.8 + 45.0 + 60.0) / 4 = 57.3); the mean over tasks weights easy tasks 28/50.
        "average": float(np.mean([g["success"] for g in groups.values()])),
        "mean_over_tasks": float(np.mean([v["success"] for v in tasks.values()])),
        "episodes": [r.to_json() for r in results],
    }
