"""`vla-jax verify-hf --src HF_DIR`: our Flax Kosmos-2 vs the Hugging Face torch model, same inputs.

Prints one JSON line with the max |difference| of the vision tower, the image-to-text projection
and the text decoder (see vla_jax.convert.verify_hf); exit code 1 when any exceeds --tol.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vla_jax.convert.verify_hf import compare_with_hf


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", required=True, type=Path, help="Hugging Face Kosmos-2 folder (needs torch installed)")
    parser.add_argument("--tol", type=float, default=1e-4, help="max allowed abs difference (float32); default 1e-4")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random pixels and token ids")
    parser.add_argument("--batch", type=int, default=2, help="batch size of the random inputs")
    parser.add_argument("--text-len", type=int, default=6, help="text tokens after the image slots")


def run(args: argparse.Namespace) -> int:
    result = compare_with_hf(args.src, tol=args.tol, seed=args.seed, batch=args.batch, text_len=args.text_len)
    print(json.dumps(result))
    return 0 if result["ok"] else 1
