"""The generic RLDS writer: arrays in, the same arrays out of tfds (TFRecord) and grain (ArrayRecord); bad input."""

import numpy as np
import pytest

from data_pipelines import rlds_writer as rw
from data_pipelines.errors import DataError

SPEC = rw.EpisodeSpec(
    observation={"image": rw.Image(8, "png"), "state": rw.Tensor(3)},
    action=rw.Tensor(2),
    metadata={"task": rw.Text(), "seed": rw.Scalar(np.int64)},
)


def _episode(n, seed, text="push the block"):
    rng = np.random.default_rng(seed)
    return {
        "observation": {
            "image": rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8),
            "state": rng.normal(size=(n, 3)).astype(np.float32),
        },
        "action": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        "language_instruction": text,
        "metadata": {"task": f"task{seed}", "seed": np.int64(seed)},
    }


def test_round_trip_through_tfrecord_and_array_record(tmp_path):
    import tensorflow_datasets as tfds

    episodes = [_episode(3, 0), _episode(5, 1, "open it")]
    episodes[1]["language_instruction"] = ["open it", "open it", "now close", "now close", "done"]
    folder = rw.write_dataset(
        str(tmp_path),
        "toy",
        SPEC,
        {"train": episodes, "val": [_episode(2, 2)]},
        extra_files=lambda: {"notes.json": "{}"},
    )
    builder = tfds.builder_from_directory(folder)
    assert builder.info.splits["train"].num_examples == 2 and builder.info.splits["val"].num_examples == 1
    assert (tmp_path / "toy" / "1.0.0" / "notes.json").read_text() == "{}"
    assert not list(tmp_path.glob(".tmp_*"))
    read = list(tfds.as_numpy(builder.as_dataset(split="train")))
    source = builder.as_data_source("train")  # ArrayRecord, grain's random access
    for ep_in, ep_tf, ep_ar in zip(episodes, read, [source[0], source[1]]):
        steps = list(ep_tf["steps"])
        n = len(ep_in["action"])
        assert len(steps) == n == len(ep_ar["steps"])
        for t, step in enumerate(steps):
            np.testing.assert_array_equal(step["observation"]["image"], ep_in["observation"]["image"][t])  # png
            np.testing.assert_array_equal(step["observation"]["state"], ep_in["observation"]["state"][t])
            np.testing.assert_array_equal(step["action"], ep_in["action"][t])
            np.testing.assert_array_equal(ep_ar["steps"][t]["action"], ep_in["action"][t])
            assert step["is_first"] == (t == 0) and step["is_last"] == step["is_terminal"] == (t == n - 1)
            assert step["reward"] == float(t == n - 1)
        texts = ep_in["language_instruction"]
        assert [s["language_instruction"].decode() for s in steps] == ([texts] * n if isinstance(texts, str) else texts)
        assert ep_tf["episode_metadata"]["seed"] == ep_in["metadata"]["seed"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda e: e["observation"].pop("state"), "missing key `observation/state`"),
        (
            lambda e: e["observation"].__setitem__("state", np.zeros((4, 3), np.float32)),
            r"observation/state`: has shape \(4, 3\)",
        ),
        (lambda e: e.__setitem__("action", np.full((3, 2), np.nan, np.float32)), "key `action`: has NaN/inf"),
        (lambda e: e["observation"].__setitem__("image", np.zeros((3, 8, 8, 3), np.float32)), "dtype float32"),
        (lambda e: e.__setitem__("language_instruction", ["a", "b"]), "2 strings for 3 steps"),
        (lambda e: e["metadata"].pop("seed"), "missing key `metadata/seed`"),
    ],
)
def test_bad_episodes_fail_with_one_line_naming_episode_and_key(tmp_path, mutate, message):
    bad = _episode(3, 0)
    mutate(bad)
    with pytest.raises(DataError, match=message) as err:
        rw.write_dataset(str(tmp_path), "toy", SPEC, {"train": [_episode(2, 1), {**bad, "key": "ep7"}]})
    assert "split train episode ep7" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "toy").exists() and not list(tmp_path.glob(".tmp_*"))  # nothing half-written


def test_existing_dataset_needs_overwrite_and_is_replaced_whole(tmp_path):
    import tensorflow_datasets as tfds

    rw.write_dataset(str(tmp_path), "toy", SPEC, {"train": [_episode(2, 0)]})
    with pytest.raises(DataError, match="already exists; pass --overwrite"):
        rw.write_dataset(str(tmp_path), "toy", SPEC, {"train": [_episode(2, 0)]})
    with pytest.raises(DataError, match="appears twice"):
        rw.write_dataset(
            str(tmp_path),
            "toy",
            SPEC,
            {"train": [{**_episode(2, 0), "key": "a"}, {**_episode(2, 1), "key": "a"}]},
            overwrite=True,
        )
    assert tfds.builder_from_directory(str(tmp_path / "toy" / "1.0.0")).info.splits["train"].num_examples == 1
    rw.write_dataset(str(tmp_path), "toy", SPEC, {"train": [_episode(2, 0), _episode(4, 1)]}, overwrite=True)
    assert tfds.builder_from_directory(str(tmp_path / "toy" / "1.0.0")).info.splits["train"].num_examples == 2


def test_resize_mode_is_recorded_per_episode_and_checked(tmp_path):
    import tensorflow_datasets as tfds

    spec = rw.EpisodeSpec(observation=SPEC.observation, action=SPEC.action, metadata=SPEC.metadata, resize_mode="pad")
    folder = rw.write_dataset(str(tmp_path), "toy", spec, {"train": [_episode(2, 0), _episode(3, 1)]})
    episodes = list(tfds.as_numpy(tfds.builder_from_directory(folder).as_dataset(split="train")))
    assert [ep["episode_metadata"][rw.RESIZE_MODE_KEY] for ep in episodes] == [b"pad", b"pad"]
    assert rw.RESIZE_MODE_KEY not in SPEC.features()["episode_metadata"]  # not resized: nothing recorded
    with pytest.raises(DataError, match="resize_mode='squash': choose one of resize, pad, center_crop"):
        rw.EpisodeSpec(observation=SPEC.observation, action=SPEC.action, resize_mode="squash")
    with pytest.raises(DataError, match="written from resize_mode"):
        rw.EpisodeSpec(observation={}, action=SPEC.action, metadata={"resize_mode": rw.Text()}, resize_mode="pad")
