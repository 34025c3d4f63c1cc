"""Scripted-expert Meta-World episodes -> an RLDS dataset, through the generic writer.

Per task, metaworld's own scripted policy (`metaworld.policies`) runs from
freshly seeded resets (new object and goal positions each episode) until
`episodes_per_task` episodes succeeded; failed episodes are not written but
counted, and successes / attempts is the expert's own success rate on the
task: the ceiling a policy trained on these demonstrations can reach.

Dataset (`{out}/{name}/1.0.0/`, split `train`, TFRecord + ArrayRecord):

    steps/observation/image   uint8 [S, S, 3]  camera frame (corner2 by default, LeRobot's placement)
    steps/observation/state   float32 [4]      end-effector xyz, gripper opening in [0, 1] (1 = open)
    steps/action              float32 [4]      [dx, dy, dz, gripper] in [-1, 1], gripper -1 = open, +1 = close
    steps/language_instruction                 the task's one fixed instruction (tasks.INSTRUCTIONS)
    episode_metadata/{task, difficulty, seed}

`collection.json` in the same folder records the settings and, per task,
attempts, kept episodes, the expert's success rate and the mean episode length.
"""

from __future__ import annotations

import json
import time

import numpy as np
from tqdm import tqdm

from data_pipelines import rlds_writer as rw
from vla_jax.errors import VLAJaxError
from vla_jax.sim.metaworld.tasks import DIFFICULTY, episode_seed
from vla_jax.sim.metaworld.worker import RemoteTaskEnv

DEFAULT_NAME = "metaworld"


def episode_spec(image_size: int) -> rw.EpisodeSpec:
    # Rendered at the stored size, never resized: no resize_mode to record.
    return rw.EpisodeSpec(
        observation={"image": rw.Image(image_size), "state": rw.Tensor(4)},
        action=rw.Tensor(4),
        metadata={"task": rw.Text(), "difficulty": rw.Text(), "seed": rw.Scalar(np.int64)},
    )


def expert_episodes(
    tasks: list[str],
    episodes_per_task: int,
    *,
    image_size: int,
    camera: str,
    seed: int,
    report: dict,
    max_attempts: int | None = None,
    progress: bool = True,
):
    """Yield the writer's episodes task by task; fill `report[task]` with the expert's counts as it goes."""
    limit = max_attempts or 3 * episodes_per_task + 10
    bar = tqdm(total=len(tasks) * episodes_per_task, desc="sim-collect metaworld", unit="episode", disable=not progress)
    for task in tasks:
        entry = report[task] = {"difficulty": DIFFICULTY[task], "attempts": 0, "kept": 0, "steps": []}
        with RemoteTaskEnv(task, image_size, camera) as env:
            while entry["kept"] < episodes_per_task and entry["attempts"] < limit:
                ep_seed = episode_seed("collect", seed, task, entry["attempts"])
                episode = env.expert_episode(ep_seed)
                entry["attempts"] += 1
                if not episode.success:
                    continue
                entry["kept"] += 1
                entry["steps"].append(len(episode.actions))
                bar.update(1)
                yield {
                    "key": f"{task}_{ep_seed}",
                    "observation": {"image": episode.frames, "state": episode.states},
                    "action": episode.actions,
                    "language_instruction": env.instruction,
                    "metadata": {"task": task, "difficulty": DIFFICULTY[task], "seed": np.int64(ep_seed)},
                }
        entry["expert_success"] = entry["kept"] / entry["attempts"]
        entry["mean_steps"] = float(np.mean(entry["steps"])) if entry["steps"] else None
    bar.close()


def collect(
    out: str,
    tasks: list[str],
    episodes_per_task: int,
    *,
    image_size: int = 224,
    camera: str = "corner2",
    seed: int = 0,
    name: str = DEFAULT_NAME,
    overwrite: bool = False,
    max_attempts: int | None = None,
    progress: bool = True,
) -> tuple[str, dict]:
    """Collect and write the dataset; returns (dataset folder, the collection report written beside it)."""
    if episodes_per_task < 1:
        raise VLAJaxError(f"--episodes-per-task {episodes_per_task}: must be at least 1")
    rw.check_target(out, name, overwrite)
    start = time.perf_counter()
    per_task: dict[str, dict] = {}
    report = {
        "settings": {
            "tasks": tasks,
            "episodes_per_task": episodes_per_task,
            "image_size": image_size,
            "camera": camera,
            "seed": seed,
        },
        "per_task": per_task,
    }

    def report_file() -> dict[str, str]:
        short = {t: e["kept"] for t, e in per_task.items() if e["kept"] < episodes_per_task}
        report["totals"] = {
            "episodes": sum(e["kept"] for e in per_task.values()),
            "failed_attempts": sum(e["attempts"] - e["kept"] for e in per_task.values()),
            "frames": sum(sum(e["steps"]) for e in per_task.values()),
            "mean_expert_success": float(np.mean([e["expert_success"] for e in per_task.values()])),
            "tasks_short_of_target": short,
            "seconds": round(time.perf_counter() - start, 1),
        }
        return {"collection.json": json.dumps(report, indent=1)}

    episodes = expert_episodes(
        tasks,
        episodes_per_task,
        image_size=image_size,
        camera=camera,
        seed=seed,
        report=per_task,
        max_attempts=max_attempts,
        progress=progress,
    )
    folder = rw.write_dataset(
        out,
        name,
        episode_spec(image_size),
        {"train": episodes},
        overwrite=overwrite,
        extra_files=report_file,
        description=f"Meta-World v3 scripted-expert episodes ({len(tasks)} tasks, {episodes_per_task} per task, "
        f"{camera} camera at {image_size}px, seed {seed}); successes only, see collection.json.",
    )
    return folder, report


def format_report(report: dict) -> str:
    lines = [f"{'task':<30}{'group':<11}{'kept':>6}{'tries':>7}{'expert':>8}{'steps':>7}"]
    for task, e in report["per_task"].items():
        steps = f"{e['mean_steps']:.0f}" if e["mean_steps"] is not None else "-"
        lines.append(
            f"{task:<30}{e['difficulty']:<11}{e['kept']:>6}{e['attempts']:>7}{e['expert_success']:>8.0%}{steps:>7}"
        )
    t = report["totals"]
    lines.append(
        f"{t['episodes']} episodes ({t['frames']} frames) kept, {t['failed_attempts']} failed expert "
        f"attempts counted and not written; mean expert success {t['mean_expert_success']:.1%}"
    )
    if t["tasks_short_of_target"]:
        lines.append(f"short of the target within the attempt limit: {t['tasks_short_of_target']}")
    return "\n".join(lines)
