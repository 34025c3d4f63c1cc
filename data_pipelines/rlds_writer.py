"""Episodes of arrays + a feature spec -> a tfds RLDS dataset folder, in TFRecord *and* ArrayRecord.

The one writer of the project: `vla-jax convert-episodes` (mobile HDF5, LeRobot),
`vla-jax sim-collect --env metaworld` and users with their own arrays all call it.

    import numpy as np
    from data_pipelines import rlds_writer as rw

    spec = rw.EpisodeSpec(
        observation={"image": rw.Image(64), "state": rw.Tensor(4)},
        action=rw.Tensor(4),
        metadata={"task": rw.Text()},
    )
    episode = {
        "observation": {"image": np.zeros((n, 64, 64, 3), np.uint8), "state": np.zeros((n, 4), np.float32)},
        "action": np.zeros((n, 4), np.float32),
        "language_instruction": "open the drawer",      # one string, or one per step
        "metadata": {"task": "drawer-open"},
    }
    builder_dir = rw.write_dataset("data/", "my_robot", spec, {"train": [episode, ...]})
    # -> data/my_robot/1.0.0/ : read it with tfds.builder_from_directory(builder_dir) or grain (ArrayRecord)

Every step gets the RLDS fields `is_first`, `is_last`, `is_terminal` (last step,
unless the episode says `"is_terminal": False`, e.g. a time-out), `reward`
(1.0 on the last step unless the episode gives `"reward": [n]`) and `discount` (1.0).
Episodes may carry a `"key"` (unique per split; default `"<split>_<index>"`) and
per-step fields declared in `EpisodeSpec.step` (e.g. an event type).
Bad episodes fail with one line naming the split, the episode and the key.

TFRecord is what `tf.data` (the RLDS mixture path) streams; ArrayRecord is what
grain reads by random access. Both hold the same serialized examples and one
`dataset_info.json` lists both formats. Output goes to a temporary folder under
`out` and is moved into place only once complete (`publish`).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from array_record.python.array_record_module import ArrayRecordWriter

from data_pipelines import paths as safe_paths
from data_pipelines.errors import DataError
from vla_runtime.policy_io import RESIZE_MODES

VERSION = "1.0.0"
RESIZE_MODE_KEY = "resize_mode"  # episode_metadata key: the policy_io resize mode the frames went through


# ---------------------------------------------------------------------------- feature declarations
@dataclasses.dataclass(frozen=True)
class Image:
    """uint8 [H, W, 3] frame, stored encoded (jpeg or png)."""

    size: int | tuple[int, int]
    encoding: str = "jpeg"

    @property
    def shape(self) -> tuple[int, ...]:
        h, w = (self.size, self.size) if isinstance(self.size, int) else self.size
        return (int(h), int(w), 3)

    def tfds(self):
        import tensorflow_datasets as tfds

        if self.encoding not in ("jpeg", "png"):
            raise DataError(f"image encoding {self.encoding!r}: choose jpeg or png")
        return tfds.features.Image(shape=self.shape, encoding_format=self.encoding)


@dataclasses.dataclass(frozen=True)
class Tensor:
    shape: int | tuple[int, ...]
    dtype: Any = np.float32

    @property
    def dims(self) -> tuple[int, ...]:
        return (int(self.shape),) if isinstance(self.shape, int) else tuple(int(s) for s in self.shape)

    def tfds(self):
        import tensorflow_datasets as tfds

        return tfds.features.Tensor(shape=self.dims, dtype=self.dtype)


@dataclasses.dataclass(frozen=True)
class Text:
    def tfds(self):
        import tensorflow_datasets as tfds

        return tfds.features.Text()


@dataclasses.dataclass(frozen=True)
class Scalar:
    dtype: Any

    def tfds(self):
        return self.dtype


Feature = Image | Tensor | Text | Scalar


@dataclasses.dataclass(frozen=True)
class EpisodeSpec:
    """What each step and each episode holds; `steps/observation/<key>`, `steps/action`, `episode_metadata/<key>`.

    `resize_mode`: the frames were resized with vla_runtime.policy_io.resize_frame in this mode (the
    converters do); every episode then records it as `episode_metadata/resize_mode`, which the grain
    loader checks against the training config. None: frames were not resized (e.g. rendered at size).
    """

    observation: Mapping[str, Feature]
    action: Tensor
    step: Mapping[str, Feature] = dataclasses.field(default_factory=dict)
    metadata: Mapping[str, Feature] = dataclasses.field(default_factory=dict)
    resize_mode: str | None = None

    def __post_init__(self):
        if self.resize_mode is not None and self.resize_mode not in RESIZE_MODES:
            raise DataError(f"resize_mode={self.resize_mode!r}: choose one of {', '.join(RESIZE_MODES)}")
        if self.resize_mode is not None and RESIZE_MODE_KEY in self.metadata:
            raise DataError(f"EpisodeSpec: metadata `{RESIZE_MODE_KEY}` is written from resize_mode; do not declare it")

    def metadata_features(self) -> dict[str, Feature]:
        return {**self.metadata, **({RESIZE_MODE_KEY: Text()} if self.resize_mode is not None else {})}

    def features(self):
        import tensorflow_datasets as tfds

        steps = {
            "observation": tfds.features.FeaturesDict({k: f.tfds() for k, f in self.observation.items()}),
            "action": self.action.tfds(),
            "language_instruction": tfds.features.Text(),
            **{k: f.tfds() for k, f in self.step.items()},
            "is_first": np.bool_,
            "is_last": np.bool_,
            "is_terminal": np.bool_,
            "reward": np.float32,
            "discount": np.float32,
        }
        return tfds.features.FeaturesDict(
            {
                "steps": tfds.features.Dataset(steps),
                "episode_metadata": tfds.features.FeaturesDict(
                    {k: f.tfds() for k, f in self.metadata_features().items()}
                ),
            }
        )


# ---------------------------------------------------------------------------- episode -> RLDS example
def _per_step(value, n: int, feature: Feature, where: str) -> np.ndarray | list:
    if isinstance(feature, Text):
        if isinstance(value, (str, bytes)):
            return [value] * n
        if len(value) != n:
            raise DataError(f"{where}: has {len(value)} strings for {n} steps; give one string or one per step")
        return list(value)
    arr = np.asarray(value)
    expected = {Image: lambda f: f.shape, Tensor: lambda f: f.dims, Scalar: lambda f: ()}[type(feature)](feature)
    if arr.shape != (n, *expected):
        raise DataError(
            f"{where}: has shape {arr.shape}, expected {(n, *expected)} (n = {n} steps, the length "
            "of `action`); fix the episode arrays or the EpisodeSpec"
        )
    if isinstance(feature, Image) and arr.dtype != np.uint8:
        raise DataError(f"{where}: images have dtype {arr.dtype}, expected uint8 [n, H, W, 3]")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise DataError(f"{where}: has NaN/inf values; fix the source data")
    return arr


def episode_example(episode: Mapping, spec: EpisodeSpec, where: str) -> dict:
    """One episode of arrays -> the nested step list tfds serializes (validated: shapes, dtypes, finiteness)."""

    def get(tree, key, path):
        if key not in tree:
            raise DataError(f"{where}: missing key `{path}` (has {sorted(tree)})")
        return tree[key]

    action = np.asarray(get(episode, "action", "action"))
    if action.ndim != 2 or action.shape[0] < 1:
        raise DataError(f"{where}: key `action` has shape {action.shape}; expected [n >= 1, {spec.action.dims[0]}]")
    n = action.shape[0]
    action = np.asarray(_per_step(action, n, spec.action, f"{where}: key `action`"), spec.action.dtype)
    obs_in = get(episode, "observation", "observation")
    obs = {
        k: _per_step(get(obs_in, k, f"observation/{k}"), n, f, f"{where}: key `observation/{k}`")
        for k, f in spec.observation.items()
    }
    text = _per_step(
        get(episode, "language_instruction", "language_instruction"), n, Text(), f"{where}: key `language_instruction`"
    )
    extra = {k: _per_step(get(episode, k, k), n, f, f"{where}: key `{k}`") for k, f in spec.step.items()}
    reward = episode.get("reward")
    reward = np.asarray(reward, np.float32) if reward is not None else (np.arange(n) == n - 1).astype(np.float32)
    if reward.shape != (n,):
        raise DataError(f"{where}: key `reward` has shape {reward.shape}, expected ({n},)")
    terminal = bool(episode.get("is_terminal", True))
    steps = [
        {
            "observation": {k: v[t] for k, v in obs.items()},
            "action": action[t],
            "language_instruction": text[t],
            **{k: v[t] for k, v in extra.items()},
            "is_first": t == 0,
            "is_last": t == n - 1,
            "is_terminal": terminal and t == n - 1,
            "reward": reward[t],
            "discount": np.float32(1.0),
        }
        for t in range(n)
    ]
    meta_in = episode.get("metadata", {})
    metadata = {k: get(meta_in, k, f"metadata/{k}") for k in spec.metadata}
    if spec.resize_mode is not None:
        metadata[RESIZE_MODE_KEY] = spec.resize_mode
    return {"steps": steps, "episode_metadata": metadata}


def _examples(episodes: Iterable[Mapping], spec: EpisodeSpec, split: str, name: str):
    seen = set()
    for i, episode in enumerate(episodes):
        key = str(episode.get("key", f"{split}_{i:06d}"))
        if key in seen:
            raise DataError(f"dataset {name} split {split}: episode key {key!r} appears twice; keys must be unique")
        seen.add(key)
        yield key, episode_example(episode, spec, f"dataset {name} split {split} episode {key}")


# ---------------------------------------------------------------------------- files
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


def final_dir(out: str, name: str, version: str = VERSION) -> str:
    """`{out}/{name}/{version}`, after checking `name` is a plain tfds name and the folder lies under `out`."""
    name = safe_paths.safe_dataset_name(name, "--name")
    out = str(safe_paths.output_dir(out, "--out"))
    return str(safe_paths.inside(out, os.path.join(out, name, version)))


def check_target(out: str, name: str, overwrite: bool, version: str = VERSION) -> str:
    """The dataset folder to be written; fails before any work if it exists and `overwrite` is off."""
    target = final_dir(out, name, version)
    if os.path.exists(target) and not overwrite:
        raise DataError(f"{target}: dataset already exists; pass --overwrite or choose another --out")
    return target


def publish(built_dir: str, target: str) -> str:
    """Move a complete dataset folder into place (all output handling is here): an old one stays whole until
    the new one is complete, then one rename swaps them (`built_dir` is staged under `--out`, one filesystem)."""
    safe_paths.replace_dir(built_dir, target)
    return target


def write_dataset(
    out: str,
    name: str,
    spec: EpisodeSpec,
    splits: Mapping[str, Iterable[Mapping]],
    *,
    description: str = "",
    version: str = VERSION,
    overwrite: bool = False,
    extra_files: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
) -> str:
    """Write `{out}/{name}/{version}/` from `splits` (split name -> iterable of episodes); returns that folder.

    Episodes are consumed lazily (a generator never holds the whole dataset).
    `extra_files` (file name -> text, or a function returning that, called once
    every episode is written: e.g. counts known only then) go into the dataset
    folder. Episode order is kept (`disable_shuffling`).
    """
    import tensorflow_datasets as tfds

    target = check_target(out, name, overwrite, version)
    if not splits:
        raise DataError(f"dataset {name}: no splits to write")
    tmp_root = str(safe_paths.inside(out, os.path.join(out, f".tmp_{name}_{os.getpid()}")))
    shutil.rmtree(tmp_root, ignore_errors=True)
    try:
        builder = tfds.dataset_builders.store_as_tfds_dataset(
            name=name,
            version=version,
            features=spec.features(),
            split_datasets={s: _examples(eps, spec, s, name) for s, eps in splits.items()},
            data_dir=tmp_root,
            file_format="tfrecord",
            disable_shuffling=True,
            description=description,
        )
        built = str(builder.data_dir)
        add_array_record(built)
        files = extra_files() if callable(extra_files) else (extra_files or {})
        for file_name, text in files.items():
            with open(os.path.join(built, file_name), "w") as f:
                f.write(text)
        return publish(built, target)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
