"""`vla-jax sim-eval`: closed-loop evaluation of an export folder (torch runtime) or a training workdir (JAX).

`--env mobile` (default): paired left/right episodes in our navigation scene (vla_jax.evaluate.closed_loop);
`--env metaworld`: Meta-World v3 on the published protocol (vla_jax.evaluate.metaworld).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vla_jax.evaluate import metaworld, metaworld_report, plots, policies
from vla_jax.evaluate.closed_loop import evaluate, format_table, summarize
from vla_jax.sim.metaworld import tasks as metaworld_tasks
from vla_jax.sim.metaworld.env import CAMERAS, MAX_PATH_LENGTH

MOBILE_MAX_STEPS = 18


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        choices=("mobile", "metaworld"),
        default="mobile",
        help="mobile = our MuJoCo navigation scene; metaworld = Meta-World v3 on the published "
        "protocol (default mobile)",
    )
    parser.add_argument(
        "--policy",
        required=True,
        help="an export folder (vla-jax export; driven by vla_runtime.Policy) or a training workdir "
        "(driven by the JAX model directly)",
    )
    parser.add_argument(
        "--episodes", type=int, default=50, help="even number of episodes, in left/right pairs (default 50)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out evaluation worlds (default 0)")
    parser.add_argument(
        "--out",
        default=None,
        help="folder for summary.json, trajectories.png and rollout GIFs (default: <policy>/sim_eval)",
    )
    parser.add_argument("--image-size", type=int, default=224, help="camera resolution in pixels (default 224)")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help=f"control steps per episode (mobile: 0.4 s each, default {MOBILE_MAX_STEPS}; metaworld: default "
        f"{MAX_PATH_LENGTH}, Meta-World's max_path_length)",
    )
    parser.add_argument(
        "--input-channel-order",
        "--channel-order",
        choices=("auto", "RGB", "BGR"),
        default="auto",
        help="channel order of the frames given to the policy; auto = the export's "
        "preprocessing.json input_channel_order, else RGB",
    )
    parser.add_argument(
        "--gifs",
        type=int,
        default=4,
        help="number of episodes saved as rollout GIFs (metaworld: the first episode of this many tasks; default 4)",
    )
    parser.add_argument("--device", default="cpu", help="torch device for an export folder (cpu or cuda)")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads for an export on CPU (default 1: fastest for small policies; 0 = torch's default)",
    )
    parser.add_argument("--step", type=int, default=None, help="checkpoint step of a workdir (default: latest)")
    group = parser.add_argument_group("Meta-World (--env metaworld)")
    group.add_argument("--tasks", default="mt10", help=f"metaworld: {metaworld_tasks.TASKS_HELP} (default mt10)")
    group.add_argument(
        "--camera",
        default="corner2",
        choices=CAMERAS,
        help="metaworld: camera (default corner2, placed and oriented as LeRobot does)",
    )
    group.add_argument(
        "--episodes-per-task",
        type=int,
        default=metaworld.EPISODES_PER_TASK,
        help=f"metaworld: episodes per task (default {metaworld.EPISODES_PER_TASK}, the published protocol)",
    )


def _load_policy(args: argparse.Namespace):
    """(policy, the channel order it is given frames in, "export" or "workdir"), for either environment."""
    return policies.load_policy(
        args.policy,
        device=args.device,
        step=args.step,
        input_channel_order=args.input_channel_order,
        torch_threads=args.torch_threads,
    )


def run(args: argparse.Namespace) -> int:
    if args.env == "metaworld":
        return _run_metaworld(args)
    start = time.perf_counter()
    args.max_steps = MOBILE_MAX_STEPS if args.max_steps is None else args.max_steps
    policy, input_channel_order, kind = _load_policy(args)
    results = evaluate(
        policy,
        args.episodes,
        seed=args.seed,
        image_size=args.image_size,
        max_steps=args.max_steps,
        input_channel_order=input_channel_order,
        record_episodes=args.gifs,
    )
    summary = summarize(results)
    summary["policy"] = {"path": str(args.policy), "kind": kind, "input_channel_order": input_channel_order}
    summary["settings"] = {
        "episodes": args.episodes,
        "seed": args.seed,
        "image_size": args.image_size,
        "max_steps": args.max_steps,
        "seconds": round(time.perf_counter() - start, 1),
    }
    out = Path(args.out) if args.out else Path(args.policy) / "sim_eval"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot = plots.trajectory_plot(
        results,
        out / "trajectories.png",
        title=f"sim-eval {Path(args.policy).name}: success {summary['overall']['success']:.0%}, "
        f"instruction sensitivity {summary['instruction_sensitivity']:.0%}",
    )
    gifs = plots.rollout_gifs(results, out / "rollouts")
    print(format_table(summary))
    print(f"wrote {out / 'summary.json'}, {plot} and {len(gifs)} GIFs in {summary['settings']['seconds']} s")
    return 0


def _run_metaworld(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    tasks = metaworld_tasks.resolve_tasks(args.tasks)
    policy, input_channel_order, kind = _load_policy(args)
    results = metaworld.evaluate(
        policy,
        tasks,
        episodes_per_task=args.episodes_per_task,
        seed=args.seed,
        image_size=args.image_size,
        camera=args.camera,
        max_steps=args.max_steps,
        input_channel_order=input_channel_order,
        record_tasks=args.gifs,
    )
    summary = metaworld.summarize(results)
    summary["policy"] = {"path": str(args.policy), "kind": kind, "input_channel_order": input_channel_order}
    summary["settings"] = {
        "tasks": tasks,
        "episodes_per_task": args.episodes_per_task,
        "seed": args.seed,
        "image_size": args.image_size,
        "camera": args.camera,
        "max_steps": min(args.max_steps or MAX_PATH_LENGTH, MAX_PATH_LENGTH),
        "seconds": round(time.perf_counter() - start, 1),
    }
    summary["published"] = {
        "source": metaworld_report.SOURCE,
        "rows": {
            name: {"size": size, "easy_medium_hard_very_hard": list(rates), "average": avg}
            for name, (size, rates, avg) in metaworld_report.PUBLISHED.items()
        },
    }
    out = Path(args.out) if args.out else Path(args.policy) / "sim_eval_metaworld"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    groups = len(summary["per_difficulty"])
    scope = "" if groups == 4 else f" over {groups} of 4 groups, not comparable to MT50"
    plot = metaworld_report.difficulty_plot(
        summary,
        out / "success_by_difficulty.png",
        f"Meta-World {args.tasks} ({len(tasks)} tasks x {args.episodes_per_task}): "
        f"{Path(args.policy).name}, mean over tasks {summary['mean_over_tasks']:.1%}, "
        f"group average {summary['average']:.1%}{scope}",
    )
    gifs = metaworld_report.rollout_gifs(results, out / "rollouts")
    print(metaworld_report.format_table(summary, label=Path(args.policy).name))
    print(f"wrote {out / 'summary.json'}, {plot} and {len(gifs)} GIFs in {summary['settings']['seconds']} s")
    return 0
