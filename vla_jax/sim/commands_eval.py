"""`vla-jax sim-eval`: closed-loop evaluation of an export folder (torch runtime) or a training workdir (JAX)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vla_jax.sim.metaworld.commands import add_eval_arguments

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
        help="control steps per episode (mobile: 0.4 s each, default 18; metaworld: default 500, "
        "Meta-World's max_path_length)",
    )
    parser.add_argument(
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
    add_eval_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.env == "metaworld":
        from vla_jax.sim.metaworld.commands import run_eval

        return run_eval(args)
    from vla_jax.sim import plots
    from vla_jax.sim.evaluate import evaluate, format_table, summarize
    from vla_jax.sim.policies import load_policy

    start = time.perf_counter()
    args.max_steps = 18 if args.max_steps is None else args.max_steps
    policy, channel_order, kind = load_policy(
        args.policy,
        device=args.device,
        step=args.step,
        channel_order=args.channel_order,
        torch_threads=args.torch_threads,
    )
    results = evaluate(
        policy,
        args.episodes,
        seed=args.seed,
        image_size=args.image_size,
        max_steps=args.max_steps,
        channel_order=channel_order,
        record_episodes=args.gifs,
    )
    summary = summarize(results)
    summary["policy"] = {"path": str(args.policy), "kind": kind, "channel_order": channel_order}
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
