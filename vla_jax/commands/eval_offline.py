"""`vla-jax eval-offline --workdir DIR --data RLDS_DIR`: the users' per-frame metrics on held-out episodes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vla_jax.evaluate.offline import evaluate_offline
from vla_jax.evaluate.offline_metrics import format_metrics

# --out names the metrics JSON to write (rewritten on every run), not a folder: the dispatcher must not refuse it.
OUT_IS_A_FILE = True
# The dispatcher adds `--registry FILE` (datasets of your own, by name in the config) and loads it before `run`.
USES_DATASET_REGISTRY = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="training workdir (vla-jax train)")
    parser.add_argument("--data", required=True, help="RLDS data dir written by vla-jax convert-episodes")
    parser.add_argument("--split", default=None, help="split to score (default: the dataset's validation split)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--batch-size", type=int, default=32, help="frames per forward pass (default 32)")
    parser.add_argument("--out", default=None, help="write the metrics JSON here (default <workdir>/eval_offline.json)")


def run(args: argparse.Namespace) -> int:
    metrics = evaluate_offline(args.workdir, args.data, split=args.split, step=args.step, batch_size=args.batch_size)
    out = Path(args.out) if args.out else Path(args.workdir) / "eval_offline.json"
    out.write_text(json.dumps(metrics, indent=2))
    print(format_metrics(metrics))
    print(f"wrote {out}")
    return 0
