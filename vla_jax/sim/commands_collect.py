"""`vla-jax sim-collect`: scripted-expert episodes (mobile scene: the users' HDF5 format; Meta-World: RLDS)."""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vla_jax.sim.metaworld.commands import add_collect_arguments

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
    parser.add_argument("--out", required=True, help="folder to write episode_*.h5 files into (must hold none yet)")
    parser.add_argument("--image-size", type=int, default=224, help="square camera resolution in pixels (default 224)")
    parser.add_argument("--seed", type=int, default=0, help="seed of scenario order, worlds and timestamps (default 0)")
    parser.add_argument(
        "--instruction-fraction",
        type=float,
        default=0.5,
        help="fraction of files that store language_instruction; the rest derive it from the filename",
    )
    add_collect_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.env == "metaworld":
        from vla_jax.sim.metaworld.commands import run_collect

        return run_collect(args)
    from vla_jax.sim.collect import collect

    start = time.perf_counter()
    paths = collect(
        args.out,
        args.episodes,
        image_size=args.image_size,
        seed=args.seed,
        instruction_fraction=args.instruction_fraction,
    )
    print(f"wrote {len(paths)} episodes to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0
