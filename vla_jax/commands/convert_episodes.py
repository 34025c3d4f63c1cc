"""`vla-jax convert-episodes`: mobile HDF5 episodes, a LeRobot dataset or per-episode .npz files -> tfds RLDS."""

from __future__ import annotations

import argparse
import json

from data_pipelines import convert_episodes, convert_lerobot, convert_npz
from vla_runtime.policy_io import RESIZE_MODES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("mobile", "lerobot", "npz"),
        default="mobile",
        help="mobile = folder of episode_*.h5 (the collector's output); lerobot = a LeRobot dataset "
        "folder (v3.0 or v2.1, with meta/info.json); npz = a folder of one .npz per episode (image [T,H,W,3] "
        "uint8, action [T,A], optional state [T,S], instruction) (default mobile)",
    )
    parser.add_argument(
        "--src", required=True, help="folder of episode_*.h5 files, the LeRobot dataset folder, or the .npz folder"
    )
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
        help="mobile: 2 = [linear_x, linear_y], 3 = + angular_z (default 2)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="newest fraction of episodes (by file name) for the val split (default 0.1 for mobile, 0 for npz)",
    )
    parser.add_argument(
        "--mirror",
        action="store_true",
        help="mobile: add a left-right mirrored copy of every train episode (flip, negate y/yaw, swap words)",
    )
    parser.add_argument(
        "--channel-order",
        "--color-order",
        type=str.upper,
        choices=("BGR", "RGB"),
        default="BGR",
        help="mobile: channel order of `images` in the files (collector default: BGR)",
    )
    parser.add_argument(
        "--name",
        default=None,
        help=f"tfds dataset name (default {convert_episodes.DEFAULT_NAME}, {convert_lerobot.DEFAULT_NAME} "
        f"for --format lerobot, {convert_npz.DEFAULT_NAME} for npz)",
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
    lerobot.add_argument("--action-key", default="action", help="lerobot/npz: key used as the action (default action)")
    lerobot.add_argument(
        "--state-key",
        default="auto",
        help="lerobot/npz: key stored as observation/state; 'none' for no state "
        "(default: observation.state (lerobot) or state (npz) when present)",
    )
    npz = parser.add_argument_group("npz (--format npz)")
    npz.add_argument("--image-key", default="image", help="uint8 [T, H, W, 3] frames (default image)")
    npz.add_argument("--instruction-key", default="instruction", help="instruction string(s) (default instruction)")
    npz.add_argument("--instruction", default=None, help="fixed instruction for files without one")


def run(args: argparse.Namespace) -> int:
    if args.format == "lerobot":
        return _run_lerobot(args)
    if args.format == "npz":
        return _run_npz(args)
    out_dir, counter = convert_episodes.convert(
        args.src,
        args.out,
        image_size=args.image_size,
        resize_mode=args.resize_mode,
        action_dim=args.action_dim,
        val_fraction=0.1 if args.val_fraction is None else args.val_fraction,
        mirror=args.mirror,
        channel_order=args.channel_order,
        name=args.name or convert_episodes.DEFAULT_NAME,
        encoding=args.encoding,
        skip_bad_episodes=args.skip_bad_episodes,
        min_length=args.min_length,
        overwrite=args.overwrite,
    )
    return _print_written(out_dir, counter)


def _print_written(out_dir: str, counter) -> int:
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


def _run_npz(args: argparse.Namespace) -> int:
    out_dir, counter, _ = convert_npz.convert(
        args.src,
        args.out,
        name=args.name or convert_npz.DEFAULT_NAME,
        image_size=args.image_size,
        resize_mode=args.resize_mode,
        val_fraction=args.val_fraction or 0.0,
        image_key=args.image_key,
        action_key=args.action_key,
        state_key=None if args.state_key == "none" else args.state_key,
        instruction_key=args.instruction_key,
        instruction=args.instruction,
        encoding=args.encoding,
        min_length=args.min_length,
        skip_bad_episodes=args.skip_bad_episodes,
        overwrite=args.overwrite,
    )
    return _print_written(out_dir, counter)


def _run_lerobot(args: argparse.Namespace) -> int:
    out_dir, report = convert_lerobot.convert(
        args.src,
        args.out,
        camera=args.camera,
        action_key=args.action_key,
        state_key=None if args.state_key == "none" else args.state_key,
        image_size=args.image_size,
        resize_mode=args.resize_mode,
        name=args.name or convert_lerobot.DEFAULT_NAME,
        encoding=args.encoding,
        overwrite=args.overwrite,
    )
    keys = ("episodes", "frames", "frames_per_s", "camera", "action_key", "state_key", "resize_mode")
    print(json.dumps({"dataset": out_dir, **{k: report[k] for k in keys}}))
    return 0
