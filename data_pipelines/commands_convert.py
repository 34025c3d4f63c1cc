"""`vla-jax convert-episodes`: mobile HDF5 episodes or a LeRobot dataset -> tfds RLDS (TFRecord + ArrayRecord)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("mobile", "lerobot"),
        default="mobile",
        help="mobile = folder of episode_*.h5 (the collector's output); lerobot = a LeRobot dataset "
        "folder (v3.0 or v2.1, with meta/info.json) (default mobile)",
    )
    parser.add_argument("--src", required=True, help="folder of episode_*.h5 files, or the LeRobot dataset folder")
    parser.add_argument("--out", required=True, help="output data dir; the dataset goes to OUT/<name>/1.0.0")
    parser.add_argument("--image-size", type=int, default=224, help="square frame size stored (default 224)")
    parser.add_argument(
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
        "--color-order",
        choices=("bgr", "rgb"),
        default="bgr",
        help="channel order of `images` in the files (collector default: bgr)",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="tfds dataset name (default mobile_episodes, or lerobot_dataset for --format lerobot)",
    )
    parser.add_argument("--encoding", choices=("jpeg", "png"), default="jpeg", help="frame encoding (default jpeg)")
    parser.add_argument("--min-length", type=int, default=2, help="episodes with fewer frames are bad data (default 2)")
    parser.add_argument(
        "--skip-bad-episodes",
        action="store_true",
        help="skip (and count) bad files instead of stopping at the first one",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing converted dataset")
    lerobot = parser.add_argument_group("LeRobot (--format lerobot)")
    lerobot.add_argument(
        "--camera",
        default=None,
        help="camera feature, e.g. observation.images.top or just top (default: the only camera)",
    )
    lerobot.add_argument("--action-key", default="action", help="numeric feature used as the action (default action)")
    lerobot.add_argument(
        "--state-key",
        default="auto",
        help="numeric feature stored as observation/state; 'none' for no state "
        "(default: observation.state when present)",
    )
    lerobot.add_argument("--pad", action="store_true", help="keep the aspect ratio (black padding) when resizing")


def run(args: argparse.Namespace) -> int:
    if args.format == "lerobot":
        return _run_lerobot(args)
    from data_pipelines.convert_episodes import DEFAULT_NAME, convert

    args.name = args.name or DEFAULT_NAME
    out_dir, counter = convert(
        args.src,
        args.out,
        image_size=args.image_size,
        action_dims=args.action_dims,
        val_fraction=args.val_fraction,
        mirror=args.mirror,
        color_order=args.color_order,
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


def _run_lerobot(args: argparse.Namespace) -> int:
    from data_pipelines.convert_lerobot import DEFAULT_NAME, convert

    out_dir, report = convert(
        args.src,
        args.out,
        camera=args.camera,
        action_key=args.action_key,
        state_key=None if args.state_key == "none" else args.state_key,
        image_size=args.image_size,
        pad=args.pad,
        name=args.name or DEFAULT_NAME,
        encoding=args.encoding,
        overwrite=args.overwrite,
    )
    print(
        json.dumps(
            {
                "dataset": out_dir,
                **{k: report[k] for k in ("episodes", "frames", "frames_per_s", "camera", "action_key", "state_key")},
            }
        )
    )
    return 0
