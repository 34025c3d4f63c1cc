"""HDF5 mobile episodes -> a real tfds RLDS dataset, in TFRecord *and* ArrayRecord (`rlds_writer`).

Layout: `{out}/{name}/1.0.0/` with splits `train` and `val` (chronological by
episode, newest episodes are validation).
"""

from __future__ import annotations

import logging
import os

import numpy as np
from tqdm import tqdm

from data_pipelines import mobile_episodes as me
from data_pipelines import rlds_writer as rw
from data_pipelines.errors import BadDataCounter, DataError

log = logging.getLogger("data_pipelines")
DEFAULT_NAME = "mobile_episodes"
VERSION = rw.VERSION


def episode_spec(
    image_size: int, action_dim: int, encoding: str = "jpeg", resize_mode: str = "resize"
) -> rw.EpisodeSpec:
    """The converted dataset's features; `resize_mode` (policy_io) is recorded per episode."""
    return rw.EpisodeSpec(
        observation={"image": rw.Image(image_size, encoding)},
        action=rw.Tensor(action_dim),
        step={"event_type": rw.Text()},
        metadata={
            "file_path": rw.Text(),
            "episode_name": rw.Text(),
            "num_steps": rw.Scalar(np.int32),
            "mirrored": rw.Scalar(np.bool_),
        },
        resize_mode=resize_mode,
    )


def episode_features(image_size: int, action_dim: int, encoding: str = "jpeg", resize_mode: str = "resize"):
    return episode_spec(image_size, action_dim, encoding, resize_mode).features()


def episode_arrays(ep: me.MobileEpisode, *, mirrored: bool = False) -> dict:
    """One mobile episode as the generic writer's episode of arrays."""
    images, actions, text = ep.images, ep.actions, ep.instruction
    if mirrored:
        images, actions, text = me.mirror_frame(images, actions, text)
    return {
        "observation": {"image": images},
        "action": actions,
        "language_instruction": text,
        "event_type": list(ep.event_types),
        "metadata": {
            "file_path": ep.path,
            "episode_name": ep.name,
            "num_steps": np.int32(len(ep)),
            "mirrored": mirrored,
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
        yield {**episode_arrays(ep), "key": key}
        if mirror:
            yield {**episode_arrays(ep, mirrored=True), "key": key + "#mirror"}


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
    spec = episode_spec(image_size, action_dim, encoding, resize_mode)  # a bad resize_mode fails here, first
    rw.check_target(out, name, overwrite, VERSION)  # a bad --name / --out fails before any file is read
    all_paths = me.list_episodes(src)
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
    final_dir = rw.write_dataset(
        out,
        name,
        spec,
        splits,
        version=VERSION,
        overwrite=overwrite,
        description=f"Mobile-robot episodes converted from {os.path.abspath(src)} "
        f"(image {image_size}px RGB ({resize_mode}), {action_dim}-D actions, val_fraction={val_fraction}, "
        f"mirror={mirror}).",
    )
    if counter.count:
        log.warning("convert-episodes: skipped %d bad episode(s): %s", counter.count, counter.summary())
    return final_dir, counter
