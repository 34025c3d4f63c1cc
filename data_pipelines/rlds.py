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
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from data_pipelines import registry as reg
from data_pipelines import schema, statistics
from data_pipelines.content_hash import directory_fingerprint
from data_pipelines.errors import BadDataCounter, DataError
from vla_runtime.policy_io import CANONICAL_GRIPPER_TEXT

log = logging.getLogger("data_pipelines")
MAX_EPISODE_STEPS = 1 << 20


def find_builder_dir(names: str | Sequence[str], data_dir: str) -> str:
    """`{data_dir}/{name}/{version}` with the newest version (first name that exists), or `data_dir` if it is one.

    `names`: the dataset's published directory name, then its aliases (e.g. `fmb`, then
    `fmb_dataset` as Octo's copies call it). `data_dir` may be a comma-separated search path
    (`gs://bucket/oxe,/data/mine`): the first folder that holds the dataset is used, so one
    mixture can combine datasets prepared in different places (e.g. a co-training mixture of a
    shared pre-training set and the robot's own converted episodes).
    """
    import tensorflow as tf

    gfile = tf.io.gfile
    names = [names] if isinstance(names, str) else list(names)
    folders = [d.strip() for d in str(data_dir).split(",") if d.strip()]
    if len(folders) > 1:
        for folder in folders:
            try:
                return find_builder_dir(names, folder)
            except DataError:
                continue
        raise DataError(
            f"{names[0]}: no prepared tfds dataset in any folder of the search path {data_dir!r}; check --data-dir "
            f"and that one folder holds {names[0]}/<version>/ (e.g. from `vla-jax convert-episodes`)"
        )
    if gfile.exists(f"{data_dir}/dataset_info.json"):
        return data_dir
    candidates = []
    for name in names:
        candidates = gfile.glob(f"{data_dir}/{name}/*/dataset_info.json")
        if not candidates:
            candidates = gfile.glob(f"{data_dir}/{name}/*/*/dataset_info.json")  # with a builder config level
        if candidates:
            break
    if not candidates:
        tried = " or ".join(f"{data_dir}/{n}" for n in names)
        raise DataError(
            f"{tried}: no prepared tfds dataset (no */dataset_info.json); check --data-dir "
            f"and that the folder holds {names[0]}/<version>/ (e.g. from `vla-jax convert-episodes`)"
        )

    def version_key(path):
        parts = path.split("/")[-2].split(".")
        return tuple(int(p) if p.isdigit() else -1 for p in parts)

    return max(candidates, key=version_key).rsplit("/", 1)[0]


def open_builder(spec_or_name: reg.DatasetSpec | str, data_dir: str):
    import tensorflow_datasets as tfds

    names = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.directory_names
    return tfds.builder_from_directory(find_builder_dir(names, data_dir))


def check_schema(spec: reg.DatasetSpec, builder) -> None:
    """The keys the standardization reads have the leaves it was written for (one DataError otherwise)."""
    expected = {f"steps/{path}": leaf for path, leaf in spec.expects.items()}
    schema.check(spec.name, expected, builder.info.features, str(builder.data_dir), spec.schema_source)


def host_split(split: str, process_index: int, process_count: int) -> Any:  # a tfds split spec
    """This host's slice of `split` (episodes are divided evenly; remainders go to the first hosts)."""
    import tensorflow_datasets as tfds

    if process_count == 1:
        return split
    return tfds.even_splits(split, n=process_count, drop_remainder=False)[process_index]


_SAID_NO_VAL: set[str] = set()  # datasets whose missing val split was already reported (once per process)


def resolve_split(spec: reg.DatasetSpec, builder, train: bool) -> str:
    """The split to read: the declared one; for evaluation without a declared one, the files' `val` split.

    Nothing is held out silently: a dataset with neither says so once when it trains, and evaluating
    it is a `DataError` naming the fix.
    """
    splits = list(builder.info.splits)
    no_val = spec.val_split is None and "val" not in splits
    if train:
        if no_val and spec.name not in _SAID_NO_VAL:
            _SAID_NO_VAL.add(spec.name)
            log.warning(
                "dataset %s: no val split (none declared, none in %s): every episode of %r trains; declare "
                "val_split (e.g. train_split='train[:95%%]', val_split='train[95%%:]') to hold episodes out",
                spec.name,
                builder.data_dir,
                spec.train_split,
            )
        return spec.train_split
    if spec.val_split is not None:
        return spec.val_split
    if no_val:
        raise DataError(
            f"dataset {spec.name} at {builder.data_dir}: no val split (the files have {splits}, its registry entry "
            "declares no val_split); declare one, e.g. train_split = 'train[:95%]' and val_split = 'train[95%:]', "
            "or pass --split"
        )
    return "val"


def _observation_features(builder) -> Any:
    features: Any = builder.info.features
    return features["steps"]["observation"]


def _skip_image_decoding(builder) -> dict:
    """tfds decoders that leave every camera encoded: the primary one is decoded after the shuffle buffer
    (kilobytes per frame in RAM, not a decoded window), the others are never used and never decoded."""
    import tensorflow_datasets as tfds

    obs = _observation_features(builder)
    return {
        "steps": {
            "observation": {
                k: tfds.decode.SkipDecoding() for k in obs.keys() if isinstance(obs[k], tfds.features.Image)
            }
        }
    }


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
    spec: reg.DatasetSpec,
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
    with_proprio: bool = False,
    split: str | None = None,
):
    """tf.data.Dataset of standardized trajectories of one dataset (this host's episodes)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = open_builder(spec, data_dir)
    check_schema(spec, builder)
    split = split or resolve_split(spec, builder, train)
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
    if with_proprio and not spec.proprio_dim:
        raise DataError(f"dataset {spec.name}: its registry entry declares no proprio (proprio_dim)")
    counter = counter or BadDataCounter(spec.name)
    # Ordered datasets (e.g. our chronological mobile episodes) must be read one file at a time.
    cycle = 1 if builder.info.disable_shuffling else (num_parallel_reads or tf.data.AUTOTUNE)
    read_config = tfds.ReadConfig(
        add_tfds_id=True, shuffle_seed=seed, interleave_cycle_length=cycle, skip_prefetch=True
    )
    ds = builder.as_dataset(
        split=host_split(split, process_index, process_count),  # pyright: ignore[reportCallIssue]
        shuffle_files=(train if shuffle_files is None else shuffle_files) and not builder.info.disable_shuffling,
        decoders=_skip_image_decoding(builder),
        read_config=read_config,
    )
    where = f"dataset {spec.name} ({builder.data_dir})"
    space = spec.action_space

    def restructure(episode):
        steps = episode["steps"].batch(MAX_EPISODE_STEPS).get_single_element()
        steps = spec.standardize(steps)
        action = tf.cast(steps["action"], tf.float32)
        if action.shape.rank != 2 or action.shape[-1] != spec.action_dim:
            raise DataError(
                f"{where}: standardized `action` has shape {action.shape}, expected [n, {spec.action_dim}] "
                f"({space.describe()}); fix its standardization function"
            )
        if space.gripper is not None and not space.gripper.is_canonical:
            grip = space.gripper.to_canonical(action[:, space.continuous :], xp=tf.experimental.numpy)
            action = tf.concat([action[:, : space.continuous], grip], axis=-1)
        n = tf.shape(action)[0]
        if spec.language_key is not None:
            lang = reg.get_path(steps, spec.language_key, f"{where}: steps")
            if lang.dtype != tf.string:
                raise DataError(f"{where}: key `{spec.language_key}` has dtype {lang.dtype.name}, expected string")
        else:
            lang = tf.fill([n], spec.fixed_instruction or "")
        if spec.fixed_instruction:
            lang = tf.where(tf.strings.length(lang) > 0, lang, spec.fixed_instruction)
        out = {"action": action, "language_instruction": lang, "episode_id": episode["tfds_id"]}
        if with_proprio:
            proprio = tf.cast(steps.get("proprio", tf.zeros([0])), tf.float32)
            if proprio.shape.rank != 2 or proprio.shape[-1] != spec.proprio_dim:
                raise DataError(
                    f"{where}: standardized `proprio` has shape {proprio.shape}, expected "
                    f"[n, {spec.proprio_dim}]; fix its standardization function or proprio_dim"
                )
            out["proprio"] = proprio
        if with_images:
            image = reg.get_path(steps["observation"], spec.image_key, f"{where}: steps/observation")
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
    return numpy_batches(iter(ds))


def numpy_batches(iterator):
    """numpy elements of a tf.data iterator (kept by the caller, so it can be checkpointed); bad data -> DataError."""
    import tensorflow as tf

    while True:
        try:
            yield tf.nest.map_structure(lambda t: t.numpy(), next(iterator))
        except StopIteration:
            return
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as err:
            msg = getattr(err, "message", str(err))
            if "DataError" not in msg:
                raise
            line = next(ln for ln in msg.splitlines() if "DataError" in ln)
            raise DataError(line.split("DataError: ", 1)[-1].strip()) from None


def dataset_identity(spec: reg.DatasetSpec, builder, split: str) -> dict:
    """What the statistics depend on: the dataset's bytes (content hash), the split and the transform code."""
    info = builder.info
    return {
        "dataset": spec.name,
        "builder": info.full_name,
        "split": split,
        "num_examples": {k: v.num_examples for k, v in info.splits.items()},
        "content": directory_fingerprint(str(builder.data_dir)),
        "transform": spec.transform_id(),
    }


def dataset_statistics(
    spec: reg.DatasetSpec, data_dir: str, cache_dir: str | None = None, skip_bad_episodes: bool = False
) -> dict:
    """Cached action (and proprio) statistics over the train split of one dataset (every host gets the same).

    A dataset whose entry names a statistics file (`DatasetSpec.statistics_file`) uses those numbers instead.
    """
    if spec.statistics_file:
        stats = statistics.read_statistics_file(spec.statistics_file, spec.normalize_mask, f"dataset {spec.name}")
        return {**stats, **_gripper_block(spec)}
    builder = open_builder(spec, data_dir)
    identity = dataset_identity(spec, builder, spec.train_split)
    with_proprio = bool(spec.proprio_dim)

    def compute():
        ds, _ = trajectory_dataset(
            spec,
            data_dir,
            train=True,
            shuffle_files=False,
            with_images=False,
            with_proprio=with_proprio,
            skip_bad_episodes=skip_bad_episodes,
        )
        actions, proprio, n_traj = [], [], 0
        total = builder.info.splits[spec.train_split].num_examples
        for traj in tqdm(iterate_numpy(ds), total=total, desc=f"stats {spec.name}", unit="episode", disable=None):
            actions.append(traj["action"])
            if with_proprio:
                proprio.append(traj["proprio"])
            n_traj += 1
        if not actions:
            raise DataError(f"dataset {spec.name}: no valid episodes in {spec.train_split}; cannot compute statistics")
        stats = statistics.compute_statistics(np.concatenate(actions), spec.normalize_mask, n_traj)
        if with_proprio:
            stats["proprio"] = statistics.summarize(np.concatenate(proprio), what=f"dataset {spec.name}: proprio")
        return {**stats, **_gripper_block(spec)}

    return statistics.load_or_compute(spec.name, identity, compute, cache_dir)


def _gripper_block(spec: reg.DatasetSpec) -> dict:
    """The statistics' `"gripper"` entry: the dataset's declared convention, which the export carries to the runtime."""
    if spec.action_space.gripper is None:
        return {}
    return {"gripper": {"convention": str(spec.action_space.gripper), "canonical": CANONICAL_GRIPPER_TEXT}}


def episode_instructions(spec: reg.DatasetSpec, data_dir: str) -> list[str]:
    """The distinct instructions of each train-split episode, in episode order (a tokenizer's training text)."""
    ds, _ = trajectory_dataset(spec, data_dir, train=True, shuffle_files=False, with_images=False)
    texts = []
    for traj in iterate_numpy(ds):
        texts.extend(dict.fromkeys(t.decode() for t in traj["language_instruction"] if t))
    return texts
