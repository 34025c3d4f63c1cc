"""`vla-jax convert-hf --src HF_DIR --out DIR`: Hugging Face Kosmos-2 -> vla-jax params folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax

from vla_jax.convert.converted import PARAMS_FILE, save_converted
from vla_jax.convert.hf_checkpoint import load_hf_checkpoint
from vla_jax.errors import VLAJaxError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--src",
        required=True,
        type=Path,
        help="Hugging Face folder (config.json + model.safetensors or a sharded index), "
        "e.g. a snapshot of microsoft/kosmos-2-patch14-224",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder: params.safetensors + config.json (+ tokenizer files)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing params.safetensors in --out")


def run(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise VLAJaxError(f"--out {args.out} is a file, not a folder; pass a folder (it is created when missing)")
    if (args.out / PARAMS_FILE).exists() and not args.force:
        raise VLAJaxError(f"{args.out / PARAMS_FILE} already exists; pass --force to overwrite or choose another --out")
    config, params = load_hf_checkpoint(args.src)
    save_converted(args.out, config, params, tokenizer_src=args.src)
    n = sum(int(x.size) for x in jax.tree_util.tree_leaves(params))
    print(
        json.dumps(
            {
                "out": str(args.out),
                "parameters": n,
                "vision_layers": config.vision.num_hidden_layers,
                "text_layers": config.text.layers,
                "latent_query_num": config.latent_query_num,
            }
        )
    )
    return 0
