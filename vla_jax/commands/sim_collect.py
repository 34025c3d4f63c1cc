"""`vla-jax sim-collect`: scripted-expert episodes (mobile scene: the users' HDF5 format; Meta-World: RLDS)."""

from __future__ import annotations

import argparse
import time

from vla_jax.sim import collect as mobile_collect
from vla_jax.sim import embodiments
from vla_jax.sim.metaworld import collect as metaworld_collect
from vla_jax.sim.metaworld import tasks as metaworld_tasks
from vla_jax.sim.metaworld.env import CAMERAS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        choices=("mobile", "metaworld"),
        default="mobile",
        help="mobile = our MuJoCo navigation scene (HDF5 episodes); metaworld = Meta-World v3 "
        "scripted experts written as an RLDS dataset (default mobile)",
    )
    parser.add_argument(
        "--episodes", type=int, default=72, help="number of episodes (default 72, the users' first data set)"
    )
    parser.add_argument(
        "--out",
        required=True,
        help="mobile: folder to write episode_*.h5 files into (must hold none yet); metaworld: data dir, "
        "the dataset goes to OUT/<name>/1.0.0",
    )
    parser.add_argument("--image-size", type=int, default=224, help="square camera resolution in pixels (default 224)")
    parser.add_argument("--seed", type=int, default=0, help="seed of scenario order, worlds and timestamps (default 0)")
    parser.add_argument(
        "--instruction-fraction",
        type=float,
        default=0.5,
        help="fraction of files that store language_instruction; the rest derive it from the filename",
    )
    parser.add_argument(
        "--embodiment",
        default=embodiments.TARGET,
        choices=sorted(embodiments.EMBODIMENTS),
        help=f"mobile: the robot and scene variant (vla_jax/sim/embodiments.py; default {embodiments.TARGET}, the "
        "users' robot); the others are for the cross-embodiment pre-training set (docs/cross_embodiment.md)",
    )
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
        default=50,
        help="metaworld: successful expert episodes kept per task (default 50, as LeRobot's MT50 set)",
    )
    group.add_argument(
        "--name",
        default=metaworld_collect.DEFAULT_NAME,
        help=f"metaworld: tfds dataset name (default {metaworld_collect.DEFAULT_NAME})",
    )
    group.add_argument("--overwrite", action="store_true", help="metaworld: replace an existing dataset")


def run(args: argparse.Namespace) -> int:
    if args.env == "metaworld":
        return _run_metaworld(args)
    start = time.perf_counter()
    paths = mobile_collect.collect(
        args.out,
        args.episodes,
        image_size=args.image_size,
        seed=args.seed,
        instruction_fraction=args.instruction_fraction,
        embodiment=args.embodiment,
    )
    print(f"wrote {len(paths)} episodes to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


def _run_metaworld(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    folder, report = metaworld_collect.collect(
        args.out,
        metaworld_tasks.resolve_tasks(args.tasks),
        args.episodes_per_task,
        image_size=args.image_size,
        camera=args.camera,
        seed=args.seed,
        name=args.name,
        overwrite=args.overwrite,
    )
    print(metaworld_collect.format_report(report))
    print(f"wrote {folder} (and collection.json there) in {time.perf_counter() - start:.1f} s")
    return 0
