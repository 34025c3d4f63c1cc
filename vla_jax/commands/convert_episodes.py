"""`vla-jax convert-episodes`: a folder of HDF5 mobile episodes -> tfds RLDS (TFRecord + ArrayRecord)."""

from __future__ import annotations

import argparse
import json

from data_pipelines.convert_episodes import convert
from vla_runtime.policy_io import RESIZE_MODES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", required=True, help="folder of episode_*.h5 files (the collector's output)")
    parser.add_argument("--out", required=True, help="output data dir; the dataset goes to OUT/<name>/1.0.0")
    parser.add_argument("--image-size", type=int, default=224, help="square frame size stored (default 224)")
    parser.add_argument(
        "--resize-mode",
        default="resize",
        choices=RESIZE_MODES,
        help="how frames become square: resize (stretch, default), pad (black bars) or center_crop; "
        "train with the same data.config.resize_mode",
    )
    parser.add_argument(
        "--action-dim",
        "--action-dims",
        type=int,
        default=2,
        choices=(2, 3),
        help="2 = [linear_x, linear_y], 3 = + angular_z (default 2)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="newest fraction of episodes (chronological by filename) for the val split (default 0.1)",
    )
    parser.add_argument(
        "--mirror",
        action="store_true",
        help="add a left-right mirrored copy of every train episode (flip, negate y/yaw, swap words)",
    )
    parser.add_argument(
        "--channel-order",
        "--color-order",
        type=str.upper,
        choices=("BGR", "RGB"),
        default="BGR",
        help="channel order of `images` in the files (collector default: BGR)",
    )
    parser.add_argument("--name", default="mobile_episodes", help="tfds dataset name (default mobile_episodes)")
    parser.add_argument("--encoding", choices=("jpeg", "png"), default="jpeg", help="frame encoding (default jpeg)")
    parser.add_argument("--min-length", type=int, default=2, help="episodes with fewer frames are bad data (default 2)")
    parser.add_argument(
        "--skip-bad-episodes",
        action="store_true",
        help="skip (and count) bad files instead of stopping at the first one",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing converted dataset")


def run(args: argparse.Namespace) -> int:
    out_dir, counter = convert(
        args.src,
        args.out,
        image_size=args.image_size,
        resize_mode=args.resize_mode,
        action_dim=args.action_dim,
        val_fraction=args.val_fraction,
        mirror=args.mirror,
        channel_order=args.channel_order,
        name=args.name,
        encoding=args.encoding,
        skip_bad_episodes=args.skip_bad_episodes,
        min_length=args.min_length,
        overwrite=args.overwrite,
    )
    import tensorflow_datasets as tfds

    info = tfds.builder_from_directory(out_dir).info
    print(
        json.dumps(
            {
                "dataset": out_dir,
                "splits": {k: v.num_examples for k, v in info.splits.items()},
                "formats": sorted(f.value for f in info.available_file_formats()),
                **counter.summary(),
            }
        )
    )
    return 0
