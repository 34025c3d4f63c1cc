"""`vla-jax sim-eval`: closed-loop evaluation of an export folder (torch runtime) or a training workdir (JAX)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vla_jax.evaluate import plots, policies
from vla_jax.evaluate.closed_loop import evaluate, format_table, summarize


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--max-steps", type=int, default=18, help="control steps per episode, 0.4 s each (default 18)")
    parser.add_argument(
        "--input-channel-order",
        "--channel-order",
        choices=("auto", "RGB", "BGR"),
        default="auto",
        help="channel order of the frames given to the policy; auto = the export's "
        "preprocessing.json input_channel_order, else RGB",
    )
    parser.add_argument("--gifs", type=int, default=4, help="number of episodes saved as rollout GIFs (default 4)")
    parser.add_argument("--device", default="cpu", help="torch device for an export folder (cpu or cuda)")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads for an export on CPU (default 1: fastest for small policies; 0 = torch's default)",
    )
    parser.add_argument("--step", type=int, default=None, help="checkpoint step of a workdir (default: latest)")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    policy, input_channel_order, kind = policies.load_policy(
        args.policy,
        device=args.device,
        step=args.step,
        input_channel_order=args.input_channel_order,
        torch_threads=args.torch_threads,
    )
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
