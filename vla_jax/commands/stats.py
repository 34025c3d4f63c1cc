"""`vla-jax stats`: compute (or load cached) action and proprio statistics of a dataset or mixture and print them."""

from __future__ import annotations

import argparse
import json

from data_pipelines import registry, rlds

# The dispatcher adds `--registry FILE` (your own datasets) and loads those files before `run`.
USES_DATASET_REGISTRY = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mixture", required=True, help="mixture name (e.g. oxe_magic_soup, mobile) or a registered dataset"
    )
    parser.add_argument("--data-dir", required=True, help="folder holding <dataset>/<version>/ (local or gs://)")
    parser.add_argument("--cache-dir", default=None, help="statistics cache (default ~/.cache/vla_jax/stats)")
    parser.add_argument("--skip-bad-episodes", action="store_true", help="skip (and count) bad episodes")


def run(args: argparse.Namespace) -> int:
    for name, weight in registry.get_mixture(args.mixture):
        stats = rlds.dataset_statistics(
            registry.get_spec(name), args.data_dir, args.cache_dir, skip_bad_episodes=args.skip_bad_episodes
        )
        stats = {k: v for k, v in stats.items() if k != "identity"}
        print(json.dumps({"dataset": name, "weight": weight, **stats}))
    return 0
