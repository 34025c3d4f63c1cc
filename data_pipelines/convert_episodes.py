"""HDF5 mobile episodes -> a real tfds RLDS dataset, in TFRecord *and* ArrayRecord.

TFRecord is what `tf.data` (the RLDS mixture path, `vla-jax inspect-data`) streams;
ArrayRecord is what grain reads by random access for exact-resume post-training.
Both hold the same serialized examples and one `dataset_info.json` lists both
formats, so `tfds.builder_from_directory` serves either.

Layout: `{out}/{name}/1.0.0/` with splits `train` and `val` (chronological by
episode, newest episodes are validation).
"""

from __future__ import annotations

import glob
import logging
import os
import shutil

import numpy as np
from array_record.python.array_record_module import ArrayRecordWriter
from tqdm import tqdm

from data_pipelines import mobile_episodes as me
from data_pipelines import paths as safe_paths
from data_pipelines.errors import BadDataCounter, DataError
from vla_runtime.policy_io import RESIZE_MODES

log = logging.getLogger("data_pipelines")
DEFAULT_NAME = "mobile_episodes"
VERSION = "1.0.0"


def episode_features(image_size: int, action_dim: int, encoding: str = "jpeg"):
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict(
        {
            "steps": tfds.features.Dataset(
                {
                    "observation": tfds.features.FeaturesDict(
                        {
                            "image": tfds.features.Image(shape=(image_size, image_size, 3), encoding_format=encoding),
                        }
                    ),
                    "action": tfds.features.Tensor(shape=(action_dim,), dtype=np.float32),
                    "language_instruction": tfds.features.Text(),
                    "event_type": tfds.features.Text(),
                    "is_first": np.bool_,
                    "is_last": np.bool_,
                    "is_terminal": np.bool_,
                    "reward": np.float32,
                    "discount": np.float32,
                }
            ),
            "episode_metadata": tfds.features.FeaturesDict(
                {
                    "file_path": tfds.features.Text(),
                    "episode_name": tfds.features.Text(),
                    "num_steps": np.int32,
                    "mirrored": np.bool_,
                    "resize_mode": tfds.features.Text(),  # policy_io resize mode the frames went through
                }
            ),
        }
    )


def episode_to_rlds(ep: me.MobileEpisode, *, mirrored: bool = False, resize_mode: str = "resize") -> dict:
    n = len(ep)
    images, actions, text = ep.images, ep.actions, ep.instruction
    if mirrored:
        images, actions, text = me.mirror_frame(images, actions, text)
    steps = [
        {
            "observation": {"image": images[t]},
            "action": actions[t],
            "language_instruction": text,
            "event_type": ep.event_types[t],
            "is_first": t == 0,
            "is_last": t == n - 1,
            "is_terminal": t == n - 1,
            "reward": np.float32(t == n - 1),
            "discount": np.float32(1.0),
        }
        for t in range(n)
    ]
    return {
        "steps": steps,
        "episode_metadata": {
            "file_path": ep.path,
            "episode_name": ep.name,
            "num_steps": np.int32(n),
            "mirrored": mirrored,
            "resize_mode": resize_mode,
        },
    }


def _examples(
    paths, *, image_size, resize_mode, action_dim, channel_order, mirror, skip_bad, counter, min_length, progress
):
    for path in tqdm(paths, desc=progress, unit="episode", disable=None):
        try:
            ep = me.read_episode(
                path,
                channel_order=channel_order,
                action_dim=action_dim,
                min_length=min_length,
                image_size=image_size,
                resize_mode=resize_mode,
            )
        except DataError as err:
            if not skip_bad:
                raise
            counter.record(err, reason="unreadable_or_invalid_episode")
            continue
        key = os.path.basename(path)
        yield key, episode_to_rlds(ep, resize_mode=resize_mode)
        if mirror:
            yield key + "#mirror", episode_to_rlds(ep, mirrored=True, resize_mode=resize_mode)


def _not_empty(examples, split: str, n_files: int, counter: BadDataCounter):
    """Passes ``examples`` through; a split that ends up with none is one `DataError` with the skip summary
    (tfds would stop with an AssertionError traceback instead)."""
    n = 0
    for item in examples:
        n += 1
        yield item
    if n == 0:
        raise DataError(
            f"convert-episodes: the {split!r} split is empty: all {n_files} of its episode files were "
            f"skipped ({counter.summary()}); fix or remove those files, or change --val-fraction"
        )


def _prescan(paths, *, action_dim, channel_order, min_length, skip_bad, counter) -> list[str]:
    """Validate every file without decoding pixels (fast), so bad files fail before anything is written."""
    good = []
    for path in tqdm(paths, desc="check episodes", unit="episode", disable=None):
        try:
            me.read_episode(
                path, channel_order=channel_order, action_dim=action_dim, min_length=min_length, load_images=False
            )
        except DataError as err:
            if not skip_bad:
                raise
            counter.record(err, reason="unreadable_or_invalid_episode")
            continue
        good.append(path)
    if not good:
        raise DataError(f"no valid episodes among {len(paths)} files (all skipped; see the warnings above)")
    return good


def add_array_record(builder_dir: str) -> list[str]:
    """Rewrite every TFRecord shard as an ArrayRecord shard and register the format.

    The records are the same serialized `tf.train.Example`s, so both formats
    decode with the same feature spec; `group_size:1` keeps each record
    individually addressable for grain's random access.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    written = []
    for src in sorted(glob.glob(os.path.join(builder_dir, "*.tfrecord-*"))):
        dst = src.replace(".tfrecord-", ".array_record-")
        writer = ArrayRecordWriter(dst, "group_size:1")
        for record in tf.data.TFRecordDataset(src):
            writer.write(record.numpy())
        writer.close()
        written.append(dst)
    info = tfds.builder_from_directory(builder_dir).info
    if "array_record" not in [f.value for f in info.alternative_file_formats]:
        info.add_alternative_file_format("array_record")
        info.write_to_directory(builder_dir)
    return written


def convert(
    src: str,
    out: str,
    *,
    image_size: int = 224,
    resize_mode: str = "resize",
    action_dim: int = 2,
    val_fraction: float = 0.1,
    mirror: bool = False,
    channel_order: str = "BGR",
    name: str = DEFAULT_NAME,
    encoding: str = "jpeg",
    skip_bad_episodes: bool = False,
    min_length: int = 2,
    overwrite: bool = False,
) -> tuple[str, BadDataCounter]:
    """Convert a folder of episodes; returns (builder dir, counter of skipped episodes).

    `mirror=True` adds a mirrored copy of every *train* episode (never of val,
    so validation stays the robot's real distribution). Frames are resized with
    vla_runtime.policy_io (`resize_mode`), which each episode records; training must use the same mode.
    """
    if resize_mode not in RESIZE_MODES:
        raise DataError(f"resize_mode={resize_mode!r}: choose one of {', '.join(RESIZE_MODES)}")
    import tensorflow_datasets as tfds

    name = safe_paths.safe_dataset_name(name, "--name")
    out = str(safe_paths.output_dir(out, "--out"))
    all_paths = me.list_episodes(src)
    final_dir = str(safe_paths.inside(out, os.path.join(out, name, VERSION)))
    if os.path.exists(final_dir) and not overwrite:
        raise DataError(f"{final_dir}: dataset already exists; pass --overwrite or choose another --out")
    counter = BadDataCounter(src)
    paths = _prescan(
        all_paths,
        action_dim=action_dim,
        channel_order=channel_order,
        min_length=min_length,
        skip_bad=skip_bad_episodes,
        counter=counter,
    )
    # Split the *valid* episodes, so skipped files never leave a split empty.
    train, val = me.split_train_val(paths, val_fraction)
    tmp_root = str(safe_paths.inside(out, os.path.join(out, f".tmp_{name}_{os.getpid()}")))
    shutil.rmtree(tmp_root, ignore_errors=True)
    common = dict(
        image_size=image_size,
        resize_mode=resize_mode,
        action_dim=action_dim,
        channel_order=channel_order,
        skip_bad=skip_bad_episodes,
        counter=counter,
        min_length=min_length,
    )
    splits = {
        "train": _not_empty(
            _examples(train, mirror=mirror, progress="convert train", **common), "train", len(train), counter
        )
    }
    if val:
        splits["val"] = _not_empty(
            _examples(val, mirror=False, progress="convert val", **common), "val", len(val), counter
        )
    try:
        builder = tfds.dataset_builders.store_as_tfds_dataset(
            name=name,
            version=VERSION,
            features=episode_features(image_size, action_dim, encoding),
            split_datasets=splits,
            data_dir=tmp_root,
            file_format="tfrecord",
            disable_shuffling=True,
            description=f"Mobile-robot episodes converted from {os.path.abspath(src)} "
            f"(image {image_size}px RGB ({resize_mode}), {action_dim}-D actions, val_fraction={val_fraction}, "
            f"mirror={mirror}).",
        )
        add_array_record(str(builder.data_dir))
        # --overwrite: the old dataset stays in place until the new one is complete, then one rename swaps them.
        safe_paths.replace_dir(str(builder.data_dir), final_dir)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    if counter.count:
        log.warning("convert-episodes: skipped %d bad episode(s): %s", counter.count, counter.summary())
    return final_dir, counter
