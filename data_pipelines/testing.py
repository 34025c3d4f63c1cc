"""Tiny on-disk datasets for tests and benchmarks, written offline with the real tools.

- `write_mobile_episode`: an HDF5 episode exactly in the collector's format (h5py).
- `write_fractal_rlds` / `write_bridge_rlds`: RLDS datasets in the real OXE schemas of
  `fractal20220817_data` (RT-1: nested action dict) and `bridge_dataset` (7-D action vector),
  written with tfds writers so that `tfds.builder_from_directory` reads them back.
- `write_published_rlds`: any dataset of `oxe_schemas.PUBLISHED` in its published feature
  structure, filled with tiny random episodes (small images; 2 episodes by default).

Values are deterministic given `seed`, so tests can recompute expectations in numpy.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from data_pipelines.oxe_schemas import PUBLISHED
from data_pipelines.schema import split_path

STEP_VALUES = np.array([-1.15, 0.0, 1.15], np.float32)


def mobile_episode_arrays(num_frames: int, height: int = 48, width: int = 64, seed: int = 0):
    """(images BGR uint8 [T,H,W,3], actions f32 [T,3], events) like the collector records them."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(num_frames, height, width, 3), dtype=np.uint8)
    actions = rng.choice(STEP_VALUES, size=(num_frames, 3)).astype(np.float32)
    actions[:, 2] *= rng.random(num_frames) < 0.2  # angular_z is rarely pressed
    actions[0] = 0.0  # frame 0 is `episode_start` with a zero action
    events = ["episode_start"] + ["start_action" if t % 2 else "stop_action" for t in range(1, num_frames)]
    return images, actions, events


def write_mobile_episode(
    folder: str,
    stamp: str = "20240501_120000",
    side: str = "left",
    num_frames: int = 6,
    height: int = 48,
    width: int = 64,
    seed: int = 0,
    instruction: str | None = None,
    tokens: str = "1box_hori_{side}_core_medium",
    **overrides,
) -> str:
    """Write one episode file; `overrides` replace datasets (value None deletes one) to make bad files."""
    images, actions, events = mobile_episode_arrays(num_frames, height, width, seed)
    data = {
        "images": images,
        "actions": actions,
        "action_event_types": np.array(events, dtype=h5py.string_dtype("utf-8")),
    }
    if instruction is not None:
        data["language_instruction"] = np.array([instruction.encode()], dtype="S256")
    data.update(overrides)
    name = f"episode_{stamp}_{tokens.format(side=side)}.h5" if tokens else f"episode_{stamp}.h5"
    path = os.path.join(folder, name)
    os.makedirs(folder, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            if value is None:
                continue
            if key == "images":
                f.create_dataset(key, data=value, compression="gzip", compression_opts=1)
            else:
                f.create_dataset(key, data=value)
        f.attrs["episode_name"] = name[:-3]
        f.attrs["num_frames"] = num_frames
        f.attrs["action_chunk_size"] = 8
    return path


def _write_rlds(name, data_dir, features, episodes):
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    gen = ((f"ep{i}", ep) for i, ep in enumerate(episodes))
    builder = tfds.dataset_builders.store_as_tfds_dataset(
        name=name,
        version="0.1.0",
        features=features,
        split_datasets={"train": gen},
        data_dir=data_dir,
        file_format="tfrecord",
        disable_shuffling=True,
    )
    return str(builder.data_dir)


def fractal_episode_arrays(length: int, seed: int):
    rng = np.random.default_rng(seed)
    return {
        "world_vector": rng.uniform(-1, 1, (length, 3)).astype(np.float32),
        "rotation_delta": rng.uniform(-0.5, 0.5, (length, 3)).astype(np.float32),
        "gripper_closedness_action": rng.choice([-1.0, 0.0, 1.0], (length, 1)).astype(np.float32),
        "terminate_episode": np.eye(3, dtype=np.int32)[rng.integers(0, 3, length)],
        "image": rng.integers(0, 256, (length, 32, 40, 3), dtype=np.uint8),
    }


def write_fractal_rlds(data_dir: str, lengths=(5, 7, 3), seed: int = 0, bad_episode: int | None = None) -> str:
    """RT-1 (`fractal20220817_data`) schema: nested action dict, `natural_language_instruction`.

    `bad_episode`: index of an episode whose world_vector gets a NaN (bad-data tests).
    """
    import tensorflow_datasets as tfds

    features = tfds.features.FeaturesDict(
        {
            "steps": tfds.features.Dataset(
                {
                    "observation": {
                        "image": tfds.features.Image(shape=(32, 40, 3), encoding_format="png"),
                        "natural_language_instruction": tfds.features.Text(),
                        "base_pose_tool_reached": tfds.features.Tensor(shape=(7,), dtype=np.float32),
                        "gripper_closed": tfds.features.Tensor(shape=(1,), dtype=np.float32),
                    },
                    "action": {
                        "world_vector": tfds.features.Tensor(shape=(3,), dtype=np.float32),
                        "rotation_delta": tfds.features.Tensor(shape=(3,), dtype=np.float32),
                        "gripper_closedness_action": tfds.features.Tensor(shape=(1,), dtype=np.float32),
                        "terminate_episode": tfds.features.Tensor(shape=(3,), dtype=np.int32),
                        "base_displacement_vector": tfds.features.Tensor(shape=(2,), dtype=np.float32),
                        "base_displacement_vertical_rotation": tfds.features.Tensor(shape=(1,), dtype=np.float32),
                    },
                    "is_first": np.bool_,
                    "is_last": np.bool_,
                    "is_terminal": np.bool_,
                    "reward": np.float32,
                }
            )
        }
    )

    def episodes():
        for i, n in enumerate(lengths):
            a = fractal_episode_arrays(n, seed + i)
            if bad_episode == i:
                a["world_vector"][n // 2, 0] = np.nan
            yield {
                "steps": [
                    {
                        "observation": {
                            "image": a["image"][t],
                            "natural_language_instruction": f"pick object {i}",
                            "base_pose_tool_reached": np.zeros(7, np.float32),
                            "gripper_closed": np.zeros(1, np.float32),
                        },
                        "action": {
                            "world_vector": a["world_vector"][t],
                            "rotation_delta": a["rotation_delta"][t],
                            "gripper_closedness_action": a["gripper_closedness_action"][t],
                            "terminate_episode": a["terminate_episode"][t],
                            "base_displacement_vector": np.zeros(2, np.float32),
                            "base_displacement_vertical_rotation": np.zeros(1, np.float32),
                        },
                        "is_first": t == 0,
                        "is_last": t == n - 1,
                        "is_terminal": t == n - 1,
                        "reward": float(t == n - 1),
                    }
                    for t in range(n)
                ]
            }

    return _write_rlds("fractal20220817_data", data_dir, features, episodes())


def bridge_episode_arrays(length: int, seed: int):
    rng = np.random.default_rng(seed)
    action = rng.uniform(-0.05, 0.05, (length, 7)).astype(np.float32)
    action[:, 6] = rng.choice([0.0, 1.0], length)
    state = np.cumsum(rng.uniform(-0.02, 0.02, (length, 7)), axis=0).astype(np.float32)
    return {"action": action, "state": state, "image": rng.integers(0, 256, (length, 32, 40, 3), dtype=np.uint8)}


def write_bridge_rlds(data_dir: str, lengths=(6, 4), seed: int = 100) -> str:
    """BridgeData V2 (`bridge_dataset`) schema: 7-D action vector, `image_0`, top-level `language_instruction`."""
    import tensorflow_datasets as tfds

    features = tfds.features.FeaturesDict(
        {
            "steps": tfds.features.Dataset(
                {
                    "observation": {
                        "image_0": tfds.features.Image(shape=(32, 40, 3), encoding_format="jpeg"),
                        "state": tfds.features.Tensor(shape=(7,), dtype=np.float32),
                    },
                    "action": tfds.features.Tensor(shape=(7,), dtype=np.float32),
                    "language_instruction": tfds.features.Text(),
                    "is_first": np.bool_,
                    "is_last": np.bool_,
                    "is_terminal": np.bool_,
                    "reward": np.float32,
                }
            )
        }
    )

    def episodes():
        for i, n in enumerate(lengths):
            a = bridge_episode_arrays(n, seed + i)
            yield {
                "steps": [
                    {
                        "observation": {"image_0": a["image"][t], "state": a["state"][t]},
                        "action": a["action"][t],
                        "language_instruction": f"put the spoon in pot {i}",
                        "is_first": t == 0,
                        "is_last": t == n - 1,
                        "is_terminal": t == n - 1,
                        "reward": 0.0,
                    }
                    for t in range(n)
                ]
            }

    return _write_rlds("bridge_dataset", data_dir, features, episodes())


def _feature(leaf, image_hw):
    import tensorflow_datasets as tfds

    if leaf.image:
        shape = (*image_hw, leaf.shape[-1])
        return tfds.features.Image(shape=shape, dtype=np.dtype(leaf.dtype), encoding_format=leaf.encoding or "png")
    if leaf.dtype == "string":
        return tfds.features.Text()
    return tfds.features.Tensor(shape=tuple(leaf.shape), dtype=np.dtype(leaf.dtype))


def _nest(flat: dict) -> dict:
    out: dict = {}
    for path, value in flat.items():
        node = out
        *parents, last = split_path(path)
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def _random_leaf(path: str, leaf, n: int, image_hw, rng, episode: int) -> np.ndarray:
    """n values of one published leaf: realistic where the publisher says which values a field takes."""
    if path.endswith(("is_first", "is_last", "is_terminal")):
        flags = np.zeros(n, bool)
        flags[0 if path.endswith("is_first") else -1] = True
        return flags
    if leaf.image:
        shape = (n, *image_hw, leaf.shape[-1])
        if leaf.dtype == "uint8":
            return rng.integers(0, 256, shape, dtype=np.uint8)
        return rng.uniform(0, 2, shape).astype(leaf.dtype)
    if leaf.utf8:
        codes = np.zeros((n, *leaf.shape), leaf.dtype)
        text = f"push the red block to corner {episode}".encode()
        codes[:, : len(text)] = np.frombuffer(text, np.uint8)
        return codes
    if leaf.dtype == "string":
        if "instruction" in path or path.endswith("episode_task"):
            return np.array([f"pick up object {episode}"] * n, dtype=object)
        return np.array([f"{path.rsplit('/', 1)[-1]}_{episode}"] * n, dtype=object)
    shape = (n, *leaf.shape)
    if leaf.values is not None:
        return rng.choice(np.asarray(leaf.values), shape).astype(leaf.dtype)
    if leaf.dtype == "bool":
        return rng.random(shape) < 0.5
    if np.issubdtype(np.dtype(leaf.dtype), np.integer):
        return rng.integers(0, 3, shape).astype(leaf.dtype)
    return rng.uniform(-1, 1, shape).astype(leaf.dtype)


def write_published_rlds(
    name: str,
    data_dir: str,
    *,
    episodes: int = 2,
    steps: int = 3,
    image_hw=(8, 10),
    seed: int = 0,
    splits=("train",),
    overrides=None,
    directory: str | None = None,
    table=None,
):
    """A tiny dataset in `name`'s published feature structure, with the tfds writer -> (builder dir, episodes).

    Every leaf of `oxe_schemas.PUBLISHED[name]` (or of `table`, {path: Leaf}) is written
    (dtype, shape, nesting, scalar vs vector, JPEG vs PNG, channels; images shrunk to
    `image_hw`). `overrides` maps a path to `f(rng, episode_index, n_steps) -> array [n, ...]`
    (or `[...]` for episode-level fields) for tests that check a convention. Returns the raw
    episodes as {path: array} per split, so tests recompute what the standardization must give.
    """
    table = PUBLISHED[name] if table is None else table
    overrides = overrides or {}
    features = {}
    for path, leaf in table.items():
        features[path] = _feature(leaf, image_hw)
    import tensorflow_datasets as tfds

    steps_features = {p.removeprefix("steps/"): f for p, f in features.items() if p.startswith("steps/")}
    top = {p: f for p, f in features.items() if not p.startswith("steps/")}
    spec = tfds.features.FeaturesDict({"steps": tfds.features.Dataset(_nest(steps_features)), **_nest(top)})
    rng = np.random.default_rng(seed)
    raw: dict[str, list[dict]] = {}
    for split in splits:
        raw[split] = []
        for e in range(episodes):
            n = steps + e  # unequal lengths, so per-episode bugs show
            ep = {}
            for path, leaf in table.items():
                per_step = path.startswith("steps/")
                if path in overrides:
                    ep[path] = np.asarray(overrides[path](rng, e, n))
                else:
                    value = _random_leaf(path, leaf, n if per_step else 1, image_hw, rng, e)
                    ep[path] = value if per_step else value[0]
            raw[split].append(ep)

    def generate(split):
        for e, ep in enumerate(raw[split]):
            n = len(next(v for p, v in ep.items() if p.startswith("steps/")))
            step_list = [
                _nest({p.removeprefix("steps/"): v[t] for p, v in ep.items() if p.startswith("steps/")})
                for t in range(n)
            ]
            yield (
                f"{split}{e}",
                {"steps": step_list, **_nest({p: v for p, v in ep.items() if not p.startswith("steps/")})},
            )

    tfds.disable_progress_bar()
    builder = tfds.dataset_builders.store_as_tfds_dataset(
        name=directory or name,
        version="0.1.0",
        features=spec,
        split_datasets={s: generate(s) for s in splits},
        data_dir=data_dir,
        file_format="tfrecord",
        disable_shuffling=True,
    )
    return str(builder.data_dir), raw
