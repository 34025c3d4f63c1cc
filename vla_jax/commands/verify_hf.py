"""`vla-jax verify-hf --src HF_DIR [--vision-src CLIP_DIR] [--num-layers N]`: ours vs HF torch, same inputs.

Any supported family (from config.json). Prints ONE JSON line with the max |difference| of the
vision tower, the projector and the LM's last hidden state (see vla_jax.convert.verify_hf); exit
code 1 when any exceeds --tol.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vla_jax.convert.verify_hf import compare_with_hf


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", required=True, type=Path, help="Hugging Face model folder (needs torch installed)")
    parser.add_argument(
        "--vision-src",
        type=Path,
        default=None,
        help="CLIPVisionModel / CLIPModel folder: verify the CLIP + Kosmos-2 hybrid (--src = Kosmos-2)",
    )
    parser.add_argument("--tol", type=float, default=1e-4, help="max allowed abs difference (float32); default 1e-4")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random pixels and token ids")
    parser.add_argument("--batch", type=int, default=2, help="batch size of the random inputs")
    parser.add_argument("--text-len", type=int, default=6, help="text tokens after the image (and PaliGemma's suffix)")
    parser.add_argument(
        "--num-layers",
        type=int,
        default=None,
        help="truncate vision tower and LM to their first N layers on both sides",
    )


def run(args: argparse.Namespace) -> int:
    result = compare_with_hf(
        args.src,
        vision_src=args.vision_src,
        tol=args.tol,
        seed=args.seed,
        batch=args.batch,
        text_len=args.text_len,
        num_layers=args.num_layers,
    )
    print(json.dumps(result))
    return 0 if result["ok"] else 1
