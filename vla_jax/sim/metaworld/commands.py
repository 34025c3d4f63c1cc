"""`vla-jax sim-collect --env metaworld` and `vla-jax sim-eval --env metaworld`: their options and runs.

The two subcommands keep one entry each (vla_jax/sim/commands_collect.py,
commands_eval.py); these functions add the Meta-World options and do the work.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vla_jax.sim.metaworld.env import CAMERAS, MAX_PATH_LENGTH


def _add_common(group) -> None:
    group.add_argument(
        "--tasks",
        default="mt10",
        help="metaworld: mt10, mt50, a difficulty group (easy, medium, hard, very_hard) or "
        "comma-separated v3 task names (default mt10)",
    )
    group.add_argument(
        "--camera",
        default="corner2",
        choices=CAMERAS,
        help="metaworld: camera (default corner2, placed and oriented as LeRobot does)",
    )


def add_collect_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Meta-World (--env metaworld)")
    _add_common(group)
    group.add_argument(
        "--episodes-per-task",
        type=int,
        default=50,
        help="metaworld: successful expert episodes kept per task (default 50, as LeRobot's MT50 set)",
    )
    group.add_argument("--name", default="metaworld", help="metaworld: tfds dataset name (default metaworld)")
    group.add_argument("--overwrite", action="store_true", help="metaworld: replace an existing dataset")


def run_collect(args: argparse.Namespace) -> int:
    from vla_jax.sim.metaworld.collect import collect, format_report
    from vla_jax.sim.metaworld.tasks import resolve_tasks

    start = time.perf_counter()
    folder, report = collect(
        args.out,
        resolve_tasks(args.tasks),
        args.episodes_per_task,
        image_size=args.image_size,
        camera=args.camera,
        seed=args.seed,
        name=args.name,
        overwrite=args.overwrite,
    )
    print(format_report(report))
    print(f"wrote {folder} (and collection.json there) in {time.perf_counter() - start:.1f} s")
    return 0


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Meta-World (--env metaworld)")
    _add_common(group)
    group.add_argument(
        "--episodes-per-task",
        type=int,
        default=10,
        help="metaworld: episodes per task (default 10, the published protocol)",
    )


def run_eval(args: argparse.Namespace) -> int:
    from vla_jax.sim.metaworld import report
    from vla_jax.sim.metaworld.evaluate import evaluate, summarize
    from vla_jax.sim.metaworld.tasks import resolve_tasks
    from vla_jax.sim.policies import load_policy

    start = time.perf_counter()
    tasks = resolve_tasks(args.tasks)
    policy, channel_order, kind = load_policy(
        args.policy,
        device=args.device,
        step=args.step,
        channel_order=args.channel_order,
        torch_threads=args.torch_threads,
    )
    results = evaluate(
        policy,
        tasks,
        episodes_per_task=args.episodes_per_task,
        seed=args.seed,
        image_size=args.image_size,
        camera=args.camera,
        max_steps=args.max_steps,
        channel_order=channel_order,
        record_tasks=args.gifs,
    )
    summary = summarize(results)
    summary["policy"] = {"path": str(args.policy), "kind": kind, "channel_order": channel_order}
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
        "source": report.SOURCE,
        "rows": {
            name: {"size": size, "easy_medium_hard_very_hard": list(rates), "average": avg}
            for name, (size, rates, avg) in report.PUBLISHED.items()
        },
    }
    out = Path(args.out) if args.out else Path(args.policy) / "sim_eval_metaworld"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    groups = len(summary["per_difficulty"])
    scope = "" if groups == 4 else f" over {groups} of 4 groups, not comparable to MT50"
    plot = report.difficulty_plot(
        summary,
        out / "success_by_difficulty.png",
        f"Meta-World {args.tasks} ({len(tasks)} tasks x {args.episodes_per_task}): "
        f"{Path(args.policy).name}, mean over tasks {summary['mean_over_tasks']:.1%}, "
        f"group average {summary['average']:.1%}{scope}",
    )
    gifs = report.rollout_gifs(results, out / "rollouts")
    print(report.format_table(summary, label=Path(args.policy).name))
    print(f"wrote {out / 'summary.json'}, {plot} and {len(gifs)} GIFs in {summary['settings']['seconds']} s")
    return 0
