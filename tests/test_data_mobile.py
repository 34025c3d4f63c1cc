"""HDF5 mobile episodes: reader, bad data, conversion to tfds, and the grain loader."""

import json
import os

import h5py
import numpy as np
import pytest

from data_pipelines import mobile_episodes as me
from data_pipelines import testing as dt
from data_pipelines.errors import DataError


def test_read_episode_bgr_to_rgb_and_instruction_from_filename(tmp_path):
    path = dt.write_mobile_episode(str(tmp_path), side="right", num_frames=5, seed=3)
    ep = me.read_episode(path, action_dim=3)
    images, actions, events = dt.mobile_episode_arrays(5, seed=3)
    np.testing.assert_array_equal(ep.images, images[..., ::-1])  # BGR -> RGB
    np.testing.assert_array_equal(ep.actions, actions)
    assert ep.event_types == events and ep.event_types[0] == "episode_start"
    assert ep.instruction == "Navigate around the obstacle on the right side and reach the target"
    rgb = me.read_episode(path, channel_order="rgb", action_dim=2)
    np.testing.assert_array_equal(rgb.images, images)
    assert rgb.actions.shape == (5, 2)


def test_instruction_from_file_wins_and_old_filenames_parse(tmp_path):
    path = dt.write_mobile_episode(str(tmp_path), instruction="go left of the box", tokens="left")
    assert me.read_episode(path).instruction == "go left of the box"
    assert me.parse_filename(path) == {
        "timestamp": "20240501_120000",
        "boxes": None,
        "orientation": None,
        "side": "left",
        "variant": None,
        "distance": None,
    }
    bare = dt.write_mobile_episode(str(tmp_path / "b"), tokens="")
    with pytest.raises(DataError, match="no left/right token"):
        me.read_episode(bare)


def test_mirror_frame_flips_negates_and_swaps_words():
    image = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    action = np.array([[1.15, -1.15, 1.15], [0.0, 1.15, 0.0]], np.float32)
    img, act, text = me.mirror_frame(image, action, "Go around the LEFT box, then Right, not leftover")
    np.testing.assert_array_equal(img[:, :, 0], image[:, :, 3])
    np.testing.assert_array_equal(act, np.float32([[1.15, 1.15, -1.15], [0.0, -1.15, 0.0]]))
    assert text == "Go around the RIGHT box, then Left, not leftover"
    _, act2, _ = me.mirror_frame(image, action[:, :2], "left")
    np.testing.assert_array_equal(act2, np.float32([[1.15, 1.15], [0.0, -1.15]]))


def test_chronological_split_by_episode():
    paths = [f"/d/episode_2024050{d}_1200{s}_left.h5" for d, s in [(3, "00"), (1, "00"), (2, "30"), (2, "00")]]
    train, val = me.split_train_val(paths, 0.25)
    assert [os.path.basename(p)[8:23] for p in train] == ["20240501_120000", "20240502_120000", "20240502_120030"]
    assert [os.path.basename(p)[8:23] for p in val] == ["20240503_120000"]


def _truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


BAD_CASES = {
    "nan": (dict(actions=np.array([[0, 0, 0], [np.nan, 0, 0], [1, 0, 0]], np.float32)), "NaN/inf"),
    "inf": (dict(actions=np.array([[0, 0, 0], [np.inf, 0, 0], [1, 0, 0]], np.float32)), "NaN/inf"),
    "missing_actions": (dict(actions=None), "missing key `actions`"),
    "missing_images": (dict(images=None), "missing key `images`"),
    "wrong_action_shape": (dict(actions=np.zeros((3,), np.float32)), "`actions` has shape"),
    "wrong_image_shape": (dict(images=np.zeros((3, 8, 8), np.uint8)), "`images` has shape"),
    "wrong_image_dtype": (dict(images=np.zeros((3, 8, 8, 3), np.float32)), "`images` has dtype"),
    "wrong_action_dtype": (dict(actions=np.zeros((3, 3), np.int64)), "`actions` has dtype"),
    "empty": (
        dict(actions=np.zeros((0, 3), np.float32), images=np.zeros((0, 8, 8, 3), np.uint8), action_event_types=None),
        "empty",
    ),
    "too_short": (
        dict(actions=np.zeros((1, 3), np.float32), images=np.zeros((1, 8, 8, 3), np.uint8), action_event_types=None),
        "fewer than min_length",
    ),
    "frame_mismatch": (dict(images=np.zeros((2, 8, 8, 3), np.uint8)), "truncated"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES) + ["corrupt"])
def test_bad_episode_raises_one_error_naming_file_episode_key(tmp_path, case):
    if case == "corrupt":
        path = dt.write_mobile_episode(str(tmp_path), num_frames=3)
        _truncate(path)
        match = "truncated or corrupt"
    else:
        overrides, match = BAD_CASES[case]
        path = dt.write_mobile_episode(str(tmp_path), num_frames=3, **overrides)
    with pytest.raises(DataError, match=match) as err:
        me.read_episode(path)
    msg = str(err.value)
    assert path in msg and "episode " in msg and "\n" not in msg


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """6 good episodes (one with a stored instruction) + 2 bad ones, converted with skip_bad_episodes."""
    from data_pipelines.convert_episodes import convert

    root = tmp_path_factory.mktemp("mobile")
    src = str(root / "h5")
    for i in range(6):
        dt.write_mobile_episode(
            src,
            stamp=f"2024050{i + 1}_120000",
            side="left" if i < 4 else "right",
            num_frames=4 + i,
            seed=i,
            instruction="drive left please" if i == 0 else None,
        )
    dt.write_mobile_episode(src, stamp="20240502_090000", num_frames=3, actions=np.full((3, 3), np.nan, np.float32))
    _truncate(dt.write_mobile_episode(src, stamp="20240503_090000", num_frames=3))
    out_dir, counter = convert(
        src,
        str(root / "rlds"),
        image_size=32,
        action_dim=2,
        val_fraction=0.25,
        mirror=True,
        skip_bad_episodes=True,
        encoding="png",
    )
    return {"root": root, "src": src, "dir": out_dir, "counter": counter}


def test_convert_writes_tfds_in_both_formats_and_counts_skips(converted):
    import tensorflow_datasets as tfds

    assert converted["counter"].count == 2  # the NaN and the truncated file, never silently
    builder = tfds.builder_from_directory(converted["dir"])
    assert {f.value for f in builder.info.available_file_formats()} == {"tfrecord", "array_record"}
    # 8 files, chronological: the 2 newest are val; train keeps 4 good episodes (+ 4 mirrors), val is never mirrored.
    splits = {k: v.num_examples for k, v in builder.info.splits.items()}
    assert splits == {"train": 8, "val": 2}
    val_paths = [e["episode_metadata"]["file_path"].decode() for e in builder.as_data_source("val")]
    assert [os.path.basename(p)[8:16] for p in val_paths] == ["20240505", "20240506"]
    # tf.data (TFRecord) and random access (ArrayRecord) decode the same episode.
    # (as_data_source switches a builder's format to ArrayRecord in place, so use a fresh builder for tf.data)
    tf_builder = tfds.builder_from_directory(converted["dir"])
    ep_tf = next(iter(tfds.as_numpy(tf_builder.as_dataset(split="train", shuffle_files=False))))
    ep_ar = builder.as_data_source("train")[0]
    assert ep_tf["episode_metadata"]["file_path"].decode().endswith("20240501_120000_1box_hori_left_core_medium.h5")
    steps, tf_steps = list(ep_ar["steps"]), list(ep_tf["steps"])
    tf_actions = np.stack([s["action"] for s in tf_steps])
    np.testing.assert_array_equal(tf_actions, np.stack([s["action"] for s in steps]))
    np.testing.assert_array_equal(tf_steps[2]["observation"]["image"], steps[2]["observation"]["image"])
    assert steps[0]["language_instruction"] == b"drive left please"
    assert [s["event_type"] for s in steps[:2]] == [b"episode_start", b"start_action"]
    assert [bool(s["is_last"]) for s in steps] == [False] * 3 + [True]
    _, actions, _ = dt.mobile_episode_arrays(4, seed=0)
    np.testing.assert_allclose(tf_actions, actions[:, :2])
    mirrored = builder.as_data_source("train")[1]
    assert bool(mirrored["episode_metadata"]["mirrored"])
    m_steps = list(mirrored["steps"])
    np.testing.assert_allclose(np.stack([s["action"] for s in m_steps]), actions[:, :2] * [1, -1])
    assert m_steps[0]["language_instruction"] == b"drive right please"
    np.testing.assert_array_equal(m_steps[1]["observation"]["image"], steps[1]["observation"]["image"][:, ::-1])


def test_convert_refuses_to_overwrite_and_stops_on_bad_file_without_skip(converted, tmp_path):
    from data_pipelines.convert_episodes import convert

    with pytest.raises(DataError, match="already exists"):
        convert(converted["src"], str(converted["root"] / "rlds"), image_size=32)
    with pytest.raises(DataError, match="NaN/inf"):
        convert(converted["src"], str(tmp_path), image_size=32, val_fraction=0.0)
    assert not os.path.exists(tmp_path / "mobile_episodes")  # no half-written dataset left behind


def _grain_loader(converted, tok, train=True, **over):
    from data_pipelines.loader import make_loader

    cfg = dict(
        kind="mobile_grain",
        data_dir=str(converted["root"] / "rlds"),
        window_size=2,
        action_chunk=5,
        action_dim=3,
        image_size=32,
        instruction_length=16,
        normalization="bounds",
        stats_cache_dir=str(converted["root"] / "stats"),
        augment=True,
    )
    cfg.update(over)
    return make_loader(cfg, tokenizer=tok, global_batch_size=4, seed=7, train=train)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from data_pipelines.tokenize import train_tokenizer

    texts = [me.DEFAULT_INSTRUCTION.format(side=s) for s in ("left", "right")] + ["drive left please"]
    return train_tokenizer(texts, str(tmp_path_factory.mktemp("tok")), vocab_size=300)


def test_grain_loader_refuses_an_eval_split_the_dataset_does_not_declare(converted, tok):
    import dataclasses

    from data_pipelines import registry

    spec = registry.get_spec(registry.get_mixture("mobile")[0][0])
    registry.register(dataclasses.replace(spec, val_split=None), overwrite=True)
    try:
        over = dict(mixture="mobile", action_dim=2, normalization="none", augment=False)
        with pytest.raises(DataError, match="declares no val split; set data.config.split or register one"):
            _grain_loader(converted, tok, train=False, **over)
        assert next(iter(_grain_loader(converted, tok, **over)))["action"].shape[0] == 4
    finally:
        registry.register(spec, overwrite=True)


def test_grain_loader_is_deterministic_and_resumes_exactly(converted, tok):
    a = _grain_loader(converted, tok)
    it = iter(a)
    first = [next(it) for _ in range(3)]
    state = json.loads(json.dumps(a.get_state()))  # JSON round trip, as the checkpoint stores it
    rest = [next(it) for _ in range(2)]
    b = _grain_loader(converted, tok)
    again = [next(iter(b)) for _ in range(3)]
    for x, y in zip(first, again):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    c = _grain_loader(converted, tok)
    c.set_state(state)
    it_c = iter(c)
    for x in rest:
        y = next(it_c)
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    batch = first[0]
    assert batch["image"].shape == (4, 2, 32, 32, 3) and batch["image"].dtype == np.uint8
    assert batch["action"].shape == (4, 2, 5, 3) and batch["action"].dtype == np.float32
    assert batch["tokens"].dtype == np.int32 and batch["tokens"].shape == (4, 16)
    np.testing.assert_array_equal(batch["action_dim_mask"], [[True, True, False]] * 4)
    assert np.all(batch["action"][..., 2] == 0)
    assert np.abs(batch["action"]).max() <= 1.0
    other = next(iter(_grain_loader(converted, tok, augment=False)))
    assert not np.array_equal(other["image"], batch["image"]) or not np.array_equal(other["action"], batch["action"])


def test_grain_sample_windows_and_statistics_match_the_source(converted, tok):
    import tensorflow_datasets as tfds

    loader = _grain_loader(converted, tok, augment=False, normalization="none")
    src = tfds.builder_from_directory(converted["dir"]).as_data_source("train")
    all_actions = np.concatenate([np.stack([s["action"] for s in src[e]["steps"]]) for e in range(len(src))])
    stats = loader.statistics["mobile_episodes"]["action"]
    np.testing.assert_allclose(stats["mean"], all_actions.mean(0), atol=1e-6)
    np.testing.assert_allclose(stats["q99"], np.quantile(all_actions, 0.99, axis=0), atol=1e-6)
    json.dumps(loader.statistics)
    # Frame 0 of episode 0 (length 4), T=2, C=5: slot 0 is before the start, slot 1 sees actions 0..3 then the end.
    from data_pipelines.grain_loader import WindowTransform

    wt = WindowTransform(
        loader.builder_dir, "train", loader.index, loader.cfg, loader.statistics["mobile_episodes"], train=False
    )
    s = wt(0, np.random.default_rng(0))
    ep_actions = np.stack([st["action"] for st in src[0]["steps"]])
    np.testing.assert_array_equal(s["image_mask"], [False, True])
    np.testing.assert_array_equal(s["action_mask"], [[False] * 5, [True] * 4 + [False]])
    np.testing.assert_allclose(s["action"][1, :4, :2], ep_actions)
    assert np.all(s["image"][0] == 0)
    np.testing.assert_array_equal(s["image"][1], src[0]["steps"][0]["observation"]["image"])


def test_grain_mirror_augmentation_is_consistent(converted, tok):
    loader = _grain_loader(
        converted, tok, augment=False, normalization="none", mirror_augment=True, window_size=1, action_chunk=1
    )
    from data_pipelines.grain_loader import WindowTransform

    plain = WindowTransform(
        loader.builder_dir,
        "train",
        loader.index,
        dict(loader.cfg, mirror_augment=False),
        loader.statistics["mobile_episodes"],
        train=True,
    )
    mirror = WindowTransform(
        loader.builder_dir, "train", loader.index, loader.cfg, loader.statistics["mobile_episodes"], train=True
    )
    flipped = 0
    for i in range(12):
        p, m = plain(i, np.random.default_rng(i)), mirror(i, np.random.default_rng(i))
        if m["instruction"] != p["instruction"]:
            flipped += 1
            np.testing.assert_array_equal(m["image"], p["image"][:, :, ::-1])
            np.testing.assert_allclose(m["action"][..., :2], p["action"][..., :2] * [1, -1])
            assert m["instruction"] == me.mirror_instruction(p["instruction"])
        else:
            np.testing.assert_array_equal(m["image"], p["image"])
    assert 0 < flipped < 12
    # Mirrored actions must stay inside the normalisation range: stats include the mirror.
    st = loader.statistics["mobile_episodes"]["action"]
    assert st["min"][1] == -st["max"][1]


def test_grain_rejects_wrong_action_dims_mixture(converted, tok):
    with pytest.raises(DataError, match="mobile_3d"):
        _grain_loader(converted, tok, mixture="mobile_3d")


def _corrupt_pixels(path):
    """Re-store `images` gzip-chunked and damage one chunk: metadata intact (passes the pre-scan), pixels not."""
    with h5py.File(path, "r+") as f:
        images = f["images"][()]
        del f["images"]
        f.create_dataset("images", data=images, chunks=(1, *images.shape[1:]), compression="gzip")
    with h5py.File(path, "r") as f:
        info = f["images"].id.get_chunk_info(1)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + 4)
        fh.write(b"\xff" * 16)


def test_pixel_damage_that_empties_a_split_is_one_line_with_the_summary(tmp_path):
    from data_pipelines.convert_episodes import convert

    src = str(tmp_path / "h5")
    for i in range(3):
        path = dt.write_mobile_episode(src, stamp=f"2024050{i + 1}_120000", num_frames=4, seed=i)
    _corrupt_pixels(path)  # the newest: the whole val split
    with pytest.raises(DataError) as err:
        convert(src, str(tmp_path / "rlds"), image_size=32, val_fraction=0.3, skip_bad_episodes=True, encoding="png")
    msg = str(err.value)
    assert "the 'val' split is empty" in msg and "'skipped': 1" in msg and "\n" not in msg
    assert not (tmp_path / "rlds" / "mobile_episodes").exists()
    assert [p.name for p in (tmp_path / "rlds").iterdir()] == []  # the staging folder is gone too
    with pytest.raises(DataError, match="cannot be decoded"):  # without skipping: the first bad file stops it
        convert(src, str(tmp_path / "rlds"), image_size=32, val_fraction=0.3, encoding="png")


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", "..", ".hidden", "", "a b", "x\x00y", "-flag"])
def test_dataset_names_that_leave_out_are_refused_before_anything_is_touched(tmp_path, name):
    from data_pipelines.convert_episodes import convert

    src = str(tmp_path / "h5")
    dt.write_mobile_episode(src, stamp="20240501_120000", num_frames=3)
    victim = tmp_path / "x"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError, match="--name .* is not a plain name"):
        convert(src, str(out), image_size=32, name=name, overwrite=True)
    assert (victim / "keep.txt").read_text() == "precious"
    assert list(out.iterdir()) == []


def test_out_that_is_a_file_is_one_line(tmp_path):
    from data_pipelines.convert_episodes import convert

    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="--out .*file is a file, not a folder"):
        convert(str(tmp_path), str(tmp_path / "file"), image_size=32)


def test_overwrite_keeps_the_old_dataset_until_the_new_one_is_complete(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from data_pipelines import convert_episodes as ce

    src = str(tmp_path / "h5")
    for i in range(3):
        dt.write_mobile_episode(src, stamp=f"2024050{i + 1}_120000", num_frames=4, seed=i)
    out = str(tmp_path / "rlds")
    first, _ = ce.convert(src, out, image_size=32, val_fraction=0.0, encoding="png")

    def fail(_):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr("data_pipelines.rlds_writer.add_array_record", fail)  # the new dataset dies half-way
    with pytest.raises(OSError, match="simulated"):
        ce.convert(src, out, image_size=32, val_fraction=0.0, encoding="png", mirror=True, overwrite=True)
    builder = tfds.builder_from_directory(first)  # the old one is whole and untouched
    assert builder.info.splits["train"].num_examples == 3
    assert sorted(os.listdir(out)) == ["mobile_episodes"]
    monkeypatch.undo()
    again, _ = ce.convert(src, out, image_size=32, val_fraction=0.0, encoding="png", mirror=True, overwrite=True)
    assert tfds.builder_from_directory(again).info.splits["train"].num_examples == 6
    assert sorted(os.listdir(os.path.dirname(again))) == ["1.0.0"]  # no .old folder left


def test_replace_dir_puts_the_old_folder_back_when_the_swap_fails(tmp_path, monkeypatch):
    from data_pipelines import paths

    final, staged = tmp_path / "final", tmp_path / "staged"
    final.mkdir()
    (final / "old.txt").write_text("old")
    real_replace = os.replace

    def flaky(a, b):
        if str(a) == str(staged):
            raise OSError("rename failed (simulated)")
        return real_replace(a, b)

    monkeypatch.setattr(paths.os, "replace", flaky)
    staged.mkdir()
    with pytest.raises(OSError):
        paths.replace_dir(staged, final)
    assert (final / "old.txt").read_text() == "old"


def test_inside_refuses_symlinks_out_of_the_base(tmp_path):
    from data_pipelines import paths

    (tmp_path / "base").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "base" / "link")
    with pytest.raises(DataError, match="outside"):
        paths.inside(tmp_path / "base", tmp_path / "base" / "link" / "x")
    assert paths.inside(tmp_path / "base", tmp_path / "base" / "a" / "b") == (tmp_path / "base" / "a" / "b").resolve()
