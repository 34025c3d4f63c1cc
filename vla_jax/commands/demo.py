"""`vla-jax demo` (what `make demo` runs): the main job end to end on a laptop CPU.

collect 72 simulated episodes in the users' HDF5 format -> convert them to RLDS
-> train a tokenizer on the instructions -> post-train the small policy-head
model of configs/demo.py from scratch (`--pretrained`: from a cross-embodiment
pre-training run, vla_jax/study/demo_pretraining.py) -> export it to the torch runtime ->
drive the simulator with the exported policy on held-out worlds -> print the
success table, instruction sensitivity and wall times.

Every stage runs the same `vla-jax` subcommand a user would type, in its own
process, so the demo exercises the product, not a shortcut. A stage whose output already
exists is reused (rerunning after an interruption continues); `--fresh`
starts over.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from data_pipelines.mobile_episodes import DEFAULT_INSTRUCTION
from data_pipelines.tokenize import train_tokenizer
from vla_jax.errors import VLAJaxError
from vla_jax.study import demo_pretraining as pretraining
from vla_jax.train.config import load_config_file
from vla_jax.train.model import data_shapes

_DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.py"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_out", help="folder for every artefact of the run (default demo_out)")
    parser.add_argument(
        "--episodes", type=int, default=72, help="episodes to collect (default 72, the users' first set)"
    )
    parser.add_argument(
        "--eval-episodes", type=int, default=50, help="closed-loop episodes, in left/right pairs (default 50)"
    )
    parser.add_argument("--seed", type=int, default=0, help="collection seed (default 0)")
    parser.add_argument("--eval-seed", type=int, default=1, help="seed of the held-out evaluation worlds (default 1)")
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="camera resolution for collection and evaluation (default: the config's model image size)",
    )
    parser.add_argument("--config", default=str(_DEFAULT_CONFIG), help="training config file (default configs/demo.py)")
    parser.add_argument("--steps", type=int, default=None, help="override the config's num_steps")
    parser.add_argument("--fresh", action="store_true", help="delete --out first instead of reusing finished stages")
    parser.add_argument(
        "--pretrained",
        action="store_true",
        help="post-train from a cross-embodiment pre-training run (configs/study_data.py:pretrain on the set of "
        "docs/cross_embodiment.md, built and trained under OUT/pretrain the first time, reused after) instead of "
        "from scratch; the tokenizer then covers that set's instructions too",
    )


def _cli(argv: list[str]) -> None:
    """Run one stage as its own `vla-jax` process, exactly as a user would type it.

    Separate processes also keep TensorFlow (convert, the data loader), JAX and
    torch out of each other's way and return each stage's memory to the system.
    """
    print(f"\n$ vla-jax {' '.join(argv)}", flush=True)
    code = subprocess.run([sys.executable, "-m", "vla_jax.cli", *argv]).returncode
    if code != 0:
        raise VLAJaxError(
            f"demo stage `vla-jax {argv[0]}` failed with exit code {code} (see the message above); "
            f"fix it and rerun `vla-jax demo` to continue from this stage"
        )


def _train_tokenizer(out: Path) -> None:
    texts = [DEFAULT_INSTRUCTION.format(side=side) for side in ("left", "right")] * 4
    train_tokenizer(texts, str(out), vocab_size=512)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()  # the workdir records data/tokenizer paths; absolute ones work from any cwd
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    config = load_config_file(f"{args.config}:{out}")
    shapes = data_shapes(config)
    image_size = args.image_size or shapes["image_size"]
    paths = {name: out / name for name in ("episodes", "rlds", "tokenizer", "workdir", "export", "eval")}
    times: dict[str, float] = {}
    start = time.perf_counter()

    def stage(name: str, done: bool, fn) -> None:
        if done:
            print(f"[demo] {name}: reusing {out}", flush=True)
            return
        t = time.perf_counter()
        fn()
        times[name] = round(time.perf_counter() - t, 1)
        print(f"[demo] {name}: {times[name]} s", flush=True)

    episodes_done = paths["episodes"].is_dir() and len(list(paths["episodes"].glob("episode_*.h5"))) == args.episodes
    if paths["episodes"].is_dir() and not episodes_done:
        shutil.rmtree(paths["episodes"])
    stage(
        "collect",
        episodes_done,
        lambda: _cli(
            [
                "sim-collect",
                "--episodes",
                str(args.episodes),
                "--out",
                str(paths["episodes"]),
                "--image-size",
                str(image_size),
                "--seed",
                str(args.seed),
            ]
        ),
    )
    stage(
        "convert",
        (paths["rlds"] / "dataset_done").is_file(),
        lambda: (
            _cli(
                [
                    "convert-episodes",
                    "--src",
                    str(paths["episodes"]),
                    "--out",
                    str(paths["rlds"]),
                    "--image-size",
                    str(shapes["image_size"]),
                    "--action-dim",
                    str(shapes["action_dim"]),
                    "--overwrite",
                ]
            ),
            (paths["rlds"] / "dataset_done").touch(),
        ),
    )
    train_argv = ["train", "--config", f"{args.config}:{out}", "--workdir", str(paths["workdir"])]
    if args.pretrained:
        init_from, tokenizer = pretraining.stages(stage, _cli, out / "pretrain", paths["rlds"], image_size)
        paths.update({name: out / f"{name}_pretrained" for name in ("workdir", "export", "eval")})
        train_argv = ["train", "--config", f"{args.config}:{out}", "--workdir", str(paths["workdir"])]
        train_argv += [f"--config.init_from={init_from}", f"--config.data.tokenizer={tokenizer}"]
    else:
        stage(
            "tokenizer", (paths["tokenizer"] / "tokenizer.json").is_file(), lambda: _train_tokenizer(paths["tokenizer"])
        )
    if args.steps:
        train_argv.append(f"--config.num_steps={args.steps}")
    stage("train", False, lambda: _cli(train_argv))  # resumes, or finds the run finished
    stage(
        "export",
        False,
        lambda: (
            shutil.rmtree(paths["export"], ignore_errors=True),
            _cli(["export", "--workdir", str(paths["workdir"]), "--out", str(paths["export"])]),
        ),
    )
    stage(
        "sim-eval",
        False,
        lambda: _cli(
            [
                "sim-eval",
                "--policy",
                str(paths["export"]),
                "--episodes",
                str(args.eval_episodes),
                "--seed",
                str(args.eval_seed),
                "--image-size",
                str(image_size),
                "--out",
                str(paths["eval"]),
            ]
        ),
    )

    summary = json.loads((paths["eval"] / "summary.json").read_text())
    total = round(time.perf_counter() - start, 1)
    report = {
        "init": "cross-embodiment pre-training (OUT/pretrain)" if args.pretrained else "from scratch",
        "wall_seconds": total,
        "stage_seconds": times,
        "success": summary["overall"]["success"],
        "instruction_sensitivity": summary["instruction_sensitivity"],
        "side_correct": summary["overall"]["side_correct"],
        "collisions": summary["overall"]["collisions"],
        "mean_steps": summary["overall"]["mean_steps"],
        "plot": str(paths["eval"] / "trajectories.png"),
    }
    summary_path = out / f"demo_summary{'_pretrained' if args.pretrained else ''}.json"
    summary_path.write_text(json.dumps(report, indent=2))
    print(f"\n[demo] done in {total} s (stages: {times})")
    print(
        f"[demo] closed-loop success {report['success']:.0%}, instruction sensitivity "
        f"{report['instruction_sensitivity']:.0%} on {args.eval_episodes} held-out episodes; "
        f"plot: {report['plot']}; summary: {summary_path}"
    )
    return 0
