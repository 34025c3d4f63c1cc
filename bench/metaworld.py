"""Meta-World and LeRobot numbers: renderer speed, the scripted expert's success per task, LeRobot conversion rate.

    python -m bench.metaworld [--quick] [--episodes 20] [--out bench/results/metaworld.json]

1. Render: ms per 64 px corner2 frame, Meta-World's own `env.render()` (gymnasium's
   MujocoRenderer, shadows and reflections on) vs our `FastRenderer` (both off),
   side by side in one TF-free child process (MuJoCo's Mesa and TensorFlow crash one process).
2. Expert: success of `metaworld.policies` per task within 500 steps on the first
   `--episodes` collection seeds (the episodes `sim-collect --env metaworld` tries first;
   physics is the same without rendering, so collection.json's rates agree), per group.
3. LeRobot conversion: frames/s of `convert-episodes --format lerobot` on a v3.0 dataset
   written per the spec (AV1, 128 px, 20 episodes x 100 frames) to 224 px JPEG RLDS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import common

_RENDER = """
import json, time
from vla_jax.sim.metaworld.env import MetaWorldTaskEnv, make_metaworld_env, CORNER2_POS
env = MetaWorldTaskEnv("drawer-open-v3", 64)
env.reset(1)
import metaworld
b = metaworld.MT1("drawer-open-v3", seed=42)
ref = b.train_classes["drawer-open-v3"](render_mode="rgb_array", camera_name="corner2", width=64, height=64)
ref.set_task(b.train_tasks[0]); ref.model.cam_pos[2] = CORNER2_POS; ref.reset(); ref.render()
out = {"metaworld_env_render": [], "fast_renderer": []}
for _ in range(ITERS):  # interleaved, so load changes hit both alike
    t = time.perf_counter(); ref.render(); out["metaworld_env_render"].append(time.perf_counter() - t)
    t = time.perf_counter(); env.renderer.render(env.env.data)
    out["fast_renderer"].append(time.perf_counter() - t)
print(json.dumps(out))
"""


def render_times(iters: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _RENDER.replace("ITERS", str(iters))],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    return {k: common.summary(v) for k, v in raw.items()}


def expert_success(tasks: list[str], episodes: int) -> dict:
    from vla_jax.sim.metaworld.env import MetaWorldTaskEnv
    from vla_jax.sim.metaworld.tasks import DIFFICULTY, GROUP_ORDER, episode_seed
    from vla_jax.sim.metaworld.worker import expert_episode

    per_task = {}
    for task in tasks:
        env = MetaWorldTaskEnv(task, 8, render=False)
        runs = [expert_episode(env, episode_seed("collect", 0, task, k), env.max_steps) for k in range(episodes)]
        env.close()
        ok = [len(r[3]) for r in runs if r[0]]
        per_task[task] = {
            "difficulty": DIFFICULTY[task],
            "success": len(ok) / episodes,
            "mean_steps_successful": float(np.mean(ok)) if ok else None,
        }
        print(f"  {task:<30}{per_task[task]['success']:>7.0%}", flush=True)
    groups = {
        g: float(np.mean([v["success"] for v in per_task.values() if v["difficulty"] == g]))
        for g in GROUP_ORDER
        if any(v["difficulty"] == g for v in per_task.values())
    }
    return {
        "episodes_per_task": episodes,
        "per_task": per_task,
        "per_difficulty": groups,
        "average_of_groups": float(np.mean(list(groups.values()))),
    }


def lerobot_conversion(episodes: int, length: int, size: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import lerobot_fixture as lf

    from data_pipelines.convert_lerobot import convert

    with tempfile.TemporaryDirectory() as tmp:
        lf.write_v30(Path(tmp) / "src", lf.make_episodes([length] * episodes, size=size), episodes_per_file=10)
        start = time.perf_counter()
        _, report = convert(str(Path(tmp) / "src"), str(Path(tmp) / "out"), image_size=224, progress=False)
        wall = time.perf_counter() - start
    return {
        "episodes": episodes,
        "frames": report["frames"],
        "source_px": size,
        "target_px": 224,
        "codec": "av1 (libsvtav1 yuv420p)",
        "seconds": round(wall, 2),
        "frames_per_s": round(report["frames"] / wall, 1),
    }


def _expert_in_child(tasks: list[str], episodes: int) -> dict:
    """`expert_success` in a TF-free child: this process imported TensorFlow (machine_info), MuJoCo's GL must not."""
    code = (
        f"import json; from bench.metaworld import expert_success; "
        f"print(json.dumps(expert_success({tasks!r}, {episodes})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=3600,
        cwd=Path(__file__).resolve().parents[1],
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    lines = proc.stdout.strip().splitlines()
    print("\n".join(lines[:-1]))
    return json.loads(lines[-1])


def main() -> None:
    p = common.parser("metaworld", __doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=20, help="expert episodes per task (default 20)")
    args = p.parse_args()
    from vla_jax.sim.metaworld.tasks import mt50

    tasks = ["reach-v3", "pick-place-v3"] if args.quick else mt50()
    result = {"machine": common.machine_info()}
    result["render_64px"] = render_times(5 if args.quick else 50)
    print("expert success on collection seeds:")
    result["expert"] = _expert_in_child(tasks, 2 if args.quick else args.episodes)
    result["lerobot_conversion"] = lerobot_conversion(*((2, 10, 64) if args.quick else (20, 100, 128)))
    result["machine"]["load_average_1_5_15_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    r, e, c = result["render_64px"], result["expert"], result["lerobot_conversion"]
    common.print_table(
        "Meta-World / LeRobot",
        ["measure", "value"],
        [
            ["env.render() ms / 64 px frame (median)", 1e3 * r["metaworld_env_render"]["median_s"]],
            ["FastRenderer ms / 64 px frame (median)", 1e3 * r["fast_renderer"]["median_s"]],
            *[[f"expert success {g}", v] for g, v in e["per_difficulty"].items()],
            ["expert success, average of groups", e["average_of_groups"]],
            ["LeRobot v3.0 -> RLDS frames/s", c["frames_per_s"]],
        ],
    )
    common.write_result(args.out, result)


if __name__ == "__main__":
    main()
