"""Read one RLDS dataset with tensorflow-datasets and standardize its trajectories.

`tfds.builder_from_directory` reads the prepared files directly (local paths and
`gs://` alike, through `tf.io.gfile`) without needing the dataset's builder code.
Episodes are sharded across hosts by tfds split slicing (`tfds.even_splits`), so
each host reads only its own episodes and never the others' files.

Output trajectories (one element per episode) are dicts of tensors with a
leading time axis n:
    image                 string [n]  (still encoded: decoding happens after the shuffle buffer)
    action                float32 [n, A] in the registry's common convention
    language_instruction  string [n]
    episode_id            string []   "<tfds file>__<record index>", used in error messages
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
from tqdm import tqdm

from data_pipelines import oxe_registry as oxe
from data_pipelines import statistics
from data_pipelines.errors import BadDataCounter, DataError

log = logging.getLogger("data_pipelines")
MAX_EPISODE_STEPS = 1 << 20


def find_builder_dir(name: str, data_dir: str) -> str:
    """`{data_dir}/{name}/{version}` with the newest version, or `data_dir` itself if it is one."""
    import tensorflow as tf

    gfile = tf.io.gfile
    if gfile.exists(f"{data_dir}/dataset_info.json"):
        return data_dir
    candidates = gfile.glob(f"{data_dir}/{name}/*/dataset_info.json")
    if not candidates:
        candidates = gfile.glob(f"{data_dir}/{name}/*/*/dataset_info.json")  # with a builder config level
    if not candidates:
        raise DataError(
            f"{data_dir}/{name}: no prepared tfds dataset (no */dataset_info.json); check --data-dir "
            f"and that the folder holds {name}/<version>/ (e.g. from `vla-jax convert-episodes`)"
        )

    def version_key(path):
        parts = path.split("/")[-2].split(".")
        return tuple(int(p) if p.isdigit() else -1 for p in parts)

    return max(candidates, key=version_key).rsplit("/", 1)[0]


def open_builder(name: str, data_dir: str):
    import tensorflow_datasets as tfds

    return tfds.builder_from_directory(find_builder_dir(name, data_dir))


def host_split(split: str, process_index: int, process_count: int) -> Any:  # a tfds split spec
    """This host's slice of `split` (episodes are divided evenly; remainders go to the first hosts)."""
    import tensorflow_datasets as tfds

    if process_count == 1:
        return split
    return tfds.even_splits(split, n=process_count, drop_remainder=False)[process_index]


def _observation_features(builder) -> Any:
    features: Any = builder.info.features
    return features["steps"]["observation"]


def _image_decoders(builder, image_key: str) -> dict:
    import tensorflow_datasets as tfds

    obs = builder.info.features["steps"]["observation"]
    feature = oxe.get_path({k: obs[k] for k in obs.keys()}, image_key, f"{builder.info.full_name}: steps/observation")
    if isinstance(feature, tfds.features.Image):
        return {"steps": {"observation": {image_key: tfds.decode.SkipDecoding()}}}
    return {}


def _check_factory(name: str, min_length: int, skip_bad: bool, counter: BadDataCounter | None):
    """A filter predicate raising/counting episodes with NaN/inf actions or too few steps."""
    import tensorflow as tf

    def report(episode_id, n, finite):
        ep = episode_id.numpy().decode()
        if not bool(finite.numpy()):
            key, why = "action", "has NaN/inf values; fix the source data"
        else:
            key, why = "steps", f"has {int(n.numpy())} steps, fewer than min_episode_length={min_length}"
        err = DataError(f"dataset {name}: episode {ep}: key `{key}` {why}, or set skip_bad_episodes=True to skip it")
        if not skip_bad:
            raise err
        assert counter is not None  # trajectory_dataset always passes one
        counter.record(err, reason="nonfinite_action" if key == "action" else "too_short")
        return False

    def predicate(traj):
        n = tf.shape(traj["action"])[0]
        finite = tf.reduce_all(tf.math.is_finite(traj["action"]))
        ok = tf.logical_and(finite, n >= min_length)
        return tf.cond(
            ok, lambda: tf.constant(True), lambda: tf.py_function(report, [traj["episode_id"], n, finite], tf.bool)
        )

    return predicate


def trajectory_dataset(
    spec: oxe.DatasetSpec,
    data_dir: str,
    *,
    train: bool = True,
    process_index: int = 0,
    process_count: int = 1,
    seed: int = 0,
    shuffle_files: bool | None = None,
    num_parallel_reads: int | None = None,
    num_parallel_calls: int | None = None,
    skip_bad_episodes: bool = False,
    counter: BadDataCounter | None = None,
    min_episode_length: int = 1,
    with_images: bool = True,
    split: str | None = None,
):
    """tf.data.Dataset of standardized trajectories of one dataset (this host's episodes)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = open_builder(spec.tfds_name, data_dir)
    split = split or (spec.train_split if train else spec.val_split)
    base_split = split.split("[")[0]
    if base_split not in builder.info.splits:
        raise DataError(
            f"dataset {spec.name} at {builder.data_dir}: no split {base_split!r} "
            f"(has {list(builder.info.splits)}); set train_split/val_split in its registry entry"
        )
    try:
        n_episodes = builder.info.splits[split].num_examples
    except (ValueError, KeyError) as err:
        raise DataError(f"dataset {spec.name}: bad split {split!r}: {err}") from err
    if n_episodes < process_count:
        raise DataError(
            f"dataset {spec.name}: split {split} has {n_episodes} episodes but there are "
            f"{process_count} hosts; every host needs at least one episode (use fewer hosts or more data)"
        )
    counter = counter or BadDataCounter(spec.name)
    decoders = (
        _image_decoders(builder, spec.image_key)
        if with_images
        else {
            "steps": {
                "observation": {
                    k: tfds.decode.SkipDecoding()
                    for k, f in _observation_features(builder).items()
                    if isinstance(f, tfds.features.Image)
                }
            }
        }
    )
    # Ordered datasets (e.g. our chronological mobile episodes) must be read one file at a time.
    cycle = 1 if builder.info.disable_shuffling else (num_parallel_reads or tf.data.AUTOTUNE)
    read_config = tfds.ReadConfig(
        add_tfds_id=True, shuffle_seed=seed, interleave_cycle_length=cycle, skip_prefetch=True
    )
    ds = builder.as_dataset(
        split=host_split(split, process_index, process_count),  # pyright: ignore[reportCallIssue]
        shuffle_files=(train if shuffle_files is None else shuffle_files) and not builder.info.disable_shuffling,
        decoders=decoders or None,
        read_config=read_config,
    )
    where = f"dataset {spec.name} ({builder.data_dir})"

    def restructure(episode):
        steps = episode["steps"].batch(MAX_EPISODE_STEPS).get_single_element()
        steps = spec.standardize(steps)
        action = tf.cast(steps["action"], tf.float32)
        if action.shape.rank != 2 or action.shape[-1] != spec.action_dim:
            raise DataError(
                f"{where}: standardized `action` has shape {action.shape}, expected [n, {spec.action_dim}] "
                f"for encoding {spec.action_encoding}; fix its standardization function"
            )
        n = tf.shape(action)[0]
        if spec.language_key is not None:
            lang = oxe.get_path(steps, spec.language_key, f"{where}: steps")
            if lang.dtype != tf.string:
                raise DataError(f"{where}: key `{spec.language_key}` has dtype {lang.dtype.name}, expected string")
        else:
            lang = tf.fill([n], spec.fixed_instruction or "")
        if spec.fixed_instruction:
            lang = tf.where(tf.strings.length(lang) > 0, lang, spec.fixed_instruction)
        out = {"action": action, "language_instruction": lang, "episode_id": episode["tfds_id"]}
        if with_images:
            image = oxe.get_path(steps["observation"], spec.image_key, f"{where}: steps/observation")
            if image.dtype != tf.string and not (image.dtype == tf.uint8 and image.shape.rank == 4):
                raise DataError(
                    f"{where}: image key `{spec.image_key}` has dtype {image.dtype.name} and shape "
                    f"{image.shape}; expected encoded images or uint8 [n, H, W, 3]"
                )
            out["image"] = image
        return out

    ds = ds.map(restructure, num_parallel_calls=num_parallel_calls or tf.data.AUTOTUNE, deterministic=True)
    return ds.filter(_check_factory(where, min_episode_length, skip_bad_episodes, counter)), builder


def iterate_numpy(ds) -> Iterator[Any]:
    """`ds.as_numpy_iterator()` that re-raises bad-data failures inside tf.data as one-line `DataError`s."""
    import tensorflow as tf

    it = ds.as_numpy_iterator()
    while True:
        try:
            yield next(it)
        except StopIteration:
            return
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as err:
            msg = getattr(err, "message", str(err))
            if "DataError" not in msg:
                raise
            line = next(ln for ln in msg.splitlines() if "DataError" in ln)
            raise DataError(line.split("DataError: ", 1)[-1].strip()) from None


def dataset_identity(spec: oxe.DatasetSpec, builder, split: str) -> dict:
    """What the statistics depend on: the files (name, version, split sizes) and the transform code."""
    info = builder.info
    return {
        "dataset": spec.name,
        "builder": info.full_name,
        "split": split,
        "num_examples": {k: v.num_examples for k, v in info.splits.items()},
        "num_bytes": {k: v.num_bytes for k, v in info.splits.items()},
        "transform": spec.transform_id(),
    }


def dataset_statistics(
    spec: oxe.DatasetSpec, data_dir: str, cache_dir: str | None = None, skip_bad_episodes: bool = False
) -> dict:
    """Cached action statistics over the train split of one dataset (all hosts compute the same numbers)."""
    builder = open_builder(spec.tfds_name, data_dir)
    identity = dataset_identity(spec, builder, spec.train_split)

    def compute():
        ds, _ = trajectory_dataset(
            spec, data_dir, train=True, shuffle_files=False, with_images=False, skip_bad_episodes=skip_bad_episodes
        )
        actions, n_traj = [], 0
        total = builder.info.splits[spec.train_split].num_examples
        for traj in tqdm(iterate_numpy(ds), total=total, desc=f"stats {spec.name}", unit="episode", disable=None):
            actions.append(traj["action"])
            n_traj += 1
        if not actions:
            raise DataError(f"dataset {spec.name}: no valid episodes in {spec.train_split}; cannot compute statistics")
        return statistics.compute_statistics(np.concatenate(actions), spec.normalize_mask, n_traj)

    return statistics.load_or_compute(spec.name, identity, compute, cache_dir)
