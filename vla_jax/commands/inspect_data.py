"""`vla-jax inspect-data`: the first thing to run on a new dataset.

Prints one JSON line per batch (keys, shapes, dtypes, per-dim min/max of the
valid normalised actions, frames/s) and saves a PNG grid of the first batch's
current frames with their instructions and an arrow for the first action.
"""

from __future__ import annotations

import argparse
import json
import textwrap
import time

import matplotlib
import numpy as np

from data_pipelines import registry
from data_pipelines.loader import make_loader
from data_pipelines.tokenize import ByteTokenizer, load_tokenizer

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402

# --out names the PNG to write (rewritten on every run), not a folder: the dispatcher must not refuse it.
OUT_IS_A_FILE = True
# The dispatcher adds `--registry FILE` (your own datasets) and loads those files before `run`.
USES_DATASET_REGISTRY = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mixture", required=True, help="mixture or dataset name (e.g. mobile, bridge_dataset, oxe_magic_soup)"
    )
    parser.add_argument("--data-dir", required=True, help="folder holding <dataset>/<version>/ (local or gs://)")
    parser.add_argument("--batches", type=int, default=3, help="batches to read (default 3)")
    parser.add_argument(
        "--out", default="inspect_grid.png", help="PNG grid of the first batch (default inspect_grid.png)"
    )
    parser.add_argument(
        "--kind",
        choices=("rlds_mixture", "mobile_grain"),
        default="rlds_mixture",
        help="pipeline to inspect (default rlds_mixture, i.e. tf.data over TFRecord)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--window-size", type=int, default=1)
    parser.add_argument("--action-chunk", type=int, default=1)
    parser.add_argument(
        "--action-dim", type=int, default=None, help="pad actions to this many dims (default: max of the mixture)"
    )
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--normalization", default="bounds_q99", choices=("bounds", "bounds_q99", "normal", "none"))
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: a UTF-8 byte tokenizer)")
    parser.add_argument("--no-augment", action="store_true", help="show frames without train augmentation")
    parser.add_argument("--shuffle-buffer", type=int, default=1000)
    parser.add_argument("--stats-cache-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)


def _grid(batch: dict, path: str, n_dims: np.ndarray) -> None:
    b = min(len(batch["image"]), 16)
    cols = min(4, b)
    rows = (b + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(b):
        ax = axes.flat[i]
        img = batch["image"][i, -1]
        ax.imshow(img)
        h, w = img.shape[:2]
        a = batch["action"][i, -1, 0]
        if n_dims[i] <= 3:  # navigation: forward = up, +linear_y (left) = left
            dx, dy = -a[1], -a[0]
        else:  # end effector: x/y of the translation delta
            dx, dy = a[0], -a[1]
        if abs(dx) + abs(dy) > 1e-3:
            ax.arrow(
                w / 2, h / 2, dx * w / 3, dy * h / 3, color="red", width=max(1.0, w / 80), length_includes_head=True
            )
        text = batch.get("instruction", [""] * b)[i]
        ax.set_title(textwrap.fill(f"[{batch['dataset_id'][i]}] {text}", 34), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    entries = registry.get_mixture(args.mixture)
    action_dim = args.action_dim or max(registry.get_spec(n).action_dim for n, _ in entries)
    cfg = dict(
        kind=args.kind,
        data_dir=args.data_dir,
        mixture=args.mixture,
        window_size=args.window_size,
        action_chunk=args.action_chunk,
        action_dim=action_dim,
        image_size=args.image_size,
        normalization=args.normalization,
        augment=not args.no_augment,
        stats_cache_dir=args.stats_cache_dir,
    )
    if args.kind == "rlds_mixture":
        cfg["shuffle_buffer"] = args.shuffle_buffer
    tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else ByteTokenizer()
    cfg["instruction_length"] = 32 if args.tokenizer else 160  # bytes are ~4x more tokens than BPE pieces
    loader = make_loader(cfg, tokenizer=tokenizer, global_batch_size=args.batch_size, seed=args.seed)
    for name, stats in loader.statistics.items():
        a = stats["action"]
        print(
            json.dumps(
                {
                    "statistics": name,
                    "normalization": stats["normalization"],
                    **{k: [round(x, 4) for x in a[k]] for k in ("mean", "std", "min", "max", "q01", "q99")},
                }
            )
        )
    t = time.perf_counter()
    for i, batch in enumerate(loader):
        if i >= args.batches:
            break
        dt = time.perf_counter() - t
        valid = batch["action_mask"][..., None] & batch["action_dim_mask"][:, None, None, :]
        act = np.where(valid, batch["action"], np.nan)
        frames = int(batch["image_mask"].sum())
        print(
            json.dumps(
                {
                    "batch": i,
                    "keys": sorted(batch),
                    "shapes": {k: list(v.shape) for k, v in batch.items()},
                    "dtypes": {k: str(v.dtype) for k, v in batch.items()},
                    "action_min": [None if np.isnan(x) else round(float(x), 4) for x in np.nanmin(act, axis=(0, 1, 2))],
                    "action_max": [None if np.isnan(x) else round(float(x), 4) for x in np.nanmax(act, axis=(0, 1, 2))],
                    "dataset_ids": np.bincount(batch["dataset_id"], minlength=len(entries)).tolist(),
                    "frames_per_s": round(frames / max(dt, 1e-9), 1),
                }
            ),
            flush=True,
        )
        if i == 0:
            dims = batch["action_dim_mask"].sum(-1)
            _grid(dict(batch, instruction=_decode(tokenizer, batch)), args.out, dims)
            print(json.dumps({"grid": args.out}), flush=True)
        t = time.perf_counter()
    if loader.bad_episodes.count:
        print(json.dumps({"bad_episodes": loader.bad_episodes.summary()}))
    return 0


def _decode(tokenizer, batch) -> list[str]:
    out = []
    for ids, mask in zip(batch["tokens"], batch["token_mask"]):
        ids = [int(x) for x in ids[mask]]
        if hasattr(tokenizer, "decode"):
            out.append(tokenizer.decode(ids, skip_special_tokens=True))
        else:  # ByteTokenizer
            out.append(bytes(x - 3 for x in ids if x >= 3).decode("utf-8", "replace"))
    return out
