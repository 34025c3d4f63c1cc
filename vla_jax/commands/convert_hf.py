"""`vla-jax convert-hf --src HF_DIR [--vision-src CLIP_DIR] --out DIR`: Hugging Face checkpoint -> vla-jax params.

The family comes from config.json's model_type (kosmos-2, paligemma, smolvlm); `--vision-src`
with a Kosmos-2 `--src` builds the CLIP + Kosmos-2 hybrid. Prints one JSON summary line.
"""

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
        help="Hugging Face folder (config.json + model.safetensors or a sharded index), e.g. a "
        "snapshot of microsoft/kosmos-2-patch14-224 or google/paligemma2-3b-pt-224",
    )
    parser.add_argument(
        "--vision-src",
        type=Path,
        default=None,
        help="CLIPVisionModel / CLIPModel folder whose vision tower replaces Kosmos-2's "
        "(the CLIP + Kosmos-2 hybrid; --src must then be Kosmos-2)",
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
    config, params = load_hf_checkpoint(args.src, vision_src=args.vision_src)
    save_converted(args.out, config, params, tokenizer_src=args.src)
    n = sum(int(x.size) for x in jax.tree_util.tree_leaves(params))
    text = config.text
    print(
        json.dumps(
            {
                "out": str(args.out),
                "model_type": config.model_type,
                "parameters": n,
                "vision_layers": config.vision.num_hidden_layers,
                "text_layers": getattr(text, "layers", getattr(text, "num_hidden_layers", None)),
                "image_tokens": config.image_tokens,
            }
        )
    )
    return 0
