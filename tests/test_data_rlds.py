"""RLDS / OXE path: standardization in two real schemas, statistics, windows at edges, mixing, bad data."""

import json

import numpy as np
import pytest

from data_pipelines import oxe_registry as oxe
from data_pipelines import rlds, statistics
from data_pipelines import testing as dt
from data_pipelines import traj_transforms as tt
from data_pipelines.errors import DataError

FRACTAL_LENGTHS = (5, 7, 3, 4)
BRIDGE_LENGTHS = (6, 4, 5)


@pytest.fixture(scope="module")
def oxe_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("oxe")
    dt.write_fractal_rlds(str(root), lengths=FRACTAL_LENGTHS)
    dt.write_bridge_rlds(str(root), lengths=BRIDGE_LENGTHS)
    return str(root)


def expected_fractal(i):
    a = dt.fractal_episode_arrays(FRACTAL_LENGTHS[i], i)
    # RT-1 gripper: +1 close / -1 open / 0 keep -> absolute openness; before the first command the
    # gripper is in the opposite state of that command (open if it never gets one).
    cmds = a["gripper_closedness_action"][:, 0]
    nz = cmds[cmds != 0]
    state = 0.0 if len(nz) and nz[0] < 0 else 1.0
    grip = []
    for c in cmds:
        state = 0.0 if c > 0 else (1.0 if c < 0 else state)
        grip.append(state)
    return np.concatenate([a["world_vector"], a["rotation_delta"], np.array(grip, np.float32)[:, None]], -1)


def _trajs(spec_name, oxe_dir):
    ds, _ = rlds.trajectory_dataset(oxe.get_spec(spec_name), oxe_dir, split="train", shuffle_files=False)
    return list(ds.as_numpy_iterator())


def test_registry_covers_magic_soup_and_named_mixtures():
    soup = oxe.get_mixture("oxe_magic_soup")
    assert len(soup) >= 25 and all(w > 0 for _, w in soup)
    for name in ("bridge", "rt_1", "mobile", "oxe_magic_soup"):
        for ds, _ in oxe.get_mixture(name):
            spec = oxe.get_spec(ds)
            assert len(spec.normalize_mask) == spec.action_dim
    with pytest.raises(DataError, match="is not registered"):
        oxe.get_mixture([("no_such_dataset", 1.0)])
    np.testing.assert_allclose(oxe.balance_weights([("a", 1.0), ("b", 2.0)], [300, 100]), [0.6, 0.4])


def test_fractal_and_bridge_actions_are_standardized(oxe_dir):
    trajs = _trajs("fractal20220817_data", oxe_dir)
    assert [len(t["action"]) for t in trajs] == list(FRACTAL_LENGTHS)
    for i, t in enumerate(trajs):
        np.testing.assert_allclose(t["action"], expected_fractal(i), atol=1e-6)
        assert t["language_instruction"][0] == f"pick object {i}".encode()
        assert t["image"].dtype == object  # still encoded; decoded after the shuffle buffer
    for i, t in enumerate(_trajs("bridge_dataset", oxe_dir)):
        # Bridge V2 (as Octo): motion relabelled from the reached state, the last step (no successor) dropped.
        raw = dt.bridge_episode_arrays(BRIDGE_LENGTHS[i], 100 + i)
        moved = raw["state"][1:, :6] - raw["state"][:-1, :6]
        np.testing.assert_allclose(t["action"], np.concatenate([moved, raw["action"][:-1, 6:]], -1), atol=1e-6)
        assert len(t["action"]) == BRIDGE_LENGTHS[i] - 1
        assert t["language_instruction"][0] == f"put the spoon in pot {i}".encode()


def test_statistics_match_numpy_and_are_cached(oxe_dir, tmp_path):
    spec = oxe.get_spec("fractal20220817_data")
    stats = rlds.dataset_statistics(spec, oxe_dir, cache_dir=str(tmp_path))
    n_train = rlds.open_builder(spec.name, oxe_dir).info.splits[spec.train_split].num_examples
    split_lengths = FRACTAL_LENGTHS[:n_train]  # stats use the spec's train split (train[:95%])
    actions = np.concatenate([expected_fractal(i) for i in range(len(split_lengths))])
    a = stats["action"]
    np.testing.assert_allclose(a["mean"], actions.mean(0), atol=1e-5)
    np.testing.assert_allclose(a["std"], actions.std(0), atol=1e-5)
    np.testing.assert_allclose(a["min"], actions.min(0), atol=1e-6)
    np.testing.assert_allclose(a["q01"], np.quantile(actions, 0.01, axis=0), atol=1e-5)
    np.testing.assert_allclose(a["q99"], np.quantile(actions, 0.99, axis=0), atol=1e-5)
    assert a["mask"] == [True] * 6 + [False] and stats["num_transitions"] == len(actions)
    files = list(tmp_path.glob("fractal20220817_data_*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["action"]["mean"] == a["mean"]
    files[0].write_text(json.dumps({**stats, "action": {**a, "mean": [42.0] * 7}}))  # cache is really used
    assert rlds.dataset_statistics(spec, oxe_dir, cache_dir=str(tmp_path))["action"]["mean"] == [42.0] * 7


def test_normalization_modes_and_gripper_mask():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32) * [1, 5, 1]
    x[:, 2] = rng.choice([0.0, 1.0], 200)
    stats = statistics.compute_statistics(x, mask=[True, True, False])
    a = stats["action"]
    b = statistics.normalize(x, stats, "bounds")
    np.testing.assert_allclose(b[:, :2].min(0), -1, atol=1e-6)
    np.testing.assert_allclose(b[:, :2].max(0), 1, atol=1e-6)
    np.testing.assert_array_equal(b[:, 2], x[:, 2])  # gripper untouched
    q = statistics.normalize(x, stats, "bounds_q99")
    assert np.abs(q).max() <= 1.0 and (np.abs(q[:, :2]) == 1.0).sum() >= 4  # outliers clipped
    n = statistics.normalize(x, stats, "normal")
    np.testing.assert_allclose(n[:, :2].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(n[:, 1], (x[:, 1] - a["mean"][1]) / a["std"][1], rtol=1e-5)
    for mode in ("bounds", "normal"):
        np.testing.assert_allclose(
            statistics.denormalize(statistics.normalize(x, stats, mode), stats, mode), x, atol=1e-4
        )
    with pytest.raises(DataError, match="normalization mode"):
        statistics.normalize(x, stats, "minmax")


@pytest.mark.parametrize("n,window,chunk", [(5, 1, 1), (5, 2, 4), (3, 2, 6), (1, 3, 2), (7, 4, 3)])
def test_windows_and_chunks_at_both_episode_edges(n, window, chunk):
    import tensorflow as tf

    obs, im, act, am = tt.window_indices_np(n, np.arange(n), window, chunk)
    for t in range(n):  # brute force definition
        for k in range(window):
            s = t - window + 1 + k
            assert im[t, k] == (s >= 0) and obs[t, k] == min(max(s, 0), n - 1)
            for c in range(chunk):
                assert am[t, k, c] == (s >= 0 and s + c < n)
                assert act[t, k, c] == min(max(s + c, 0), n - 1)
    for got, want in zip(tt.window_indices_tf(tf.constant(n), window, chunk), (obs, im, act, am)):
        np.testing.assert_array_equal(got.numpy(), want)
    traj = {"image": tf.range(n) * 10, "action": tf.cast(tf.range(n)[:, None], tf.float32)}
    out = tt.chunk_trajectory_tf(traj, window, chunk)
    assert out["action"].shape == (n, window, chunk, 1)
    np.testing.assert_array_equal(out["action"].numpy()[..., 0], act)  # C > T and C > n do not crash


def _rlds_loader(oxe_dir, tok, tmp_path, **over):
    from data_pipelines.loader import make_loader

    cfg = dict(
        kind="rlds_mixture",
        data_dir=oxe_dir,
        mixture=[("fractal20220817_data", 1.0), ("bridge_dataset", 1.0)],
        split="train",
        window_size=2,
        action_chunk=3,
        image_size=32,
        instruction_length=12,
        stats_cache_dir=str(tmp_path),
        shuffle_buffer=64,
        normalization="bounds",
    )
    cfg.update(over)
    return make_loader(cfg, tokenizer=tok, global_batch_size=16, seed=3)


@pytest.fixture(scope="module")
def tok():
    # The byte tokenizer keeps transformers out of this file (HF tokenizers are tested in test_data_mobile).
    from data_pipelines.tokenize import ByteTokenizer

    return ByteTokenizer()


def test_mixture_batches_shapes_proportions_and_values(oxe_dir, tok, tmp_path):
    loader = _rlds_loader(
        oxe_dir, tok, tmp_path, mixture=[("fractal20220817_data", 3.0), ("bridge_dataset", 1.0)], augment=False
    )
    it = iter(loader)
    batches = [next(it) for _ in range(16)]
    b = batches[0]
    assert b["image"].shape == (16, 2, 32, 32, 3) and b["image"].dtype == np.uint8
    assert b["action"].shape == (16, 2, 3, 7) and b["action"].dtype == np.float32
    assert b["action_mask"].shape == (16, 2, 3) and b["image_mask"].shape == (16, 2)
    assert b["tokens"].shape == (16, 12) and b["tokens"].dtype == np.int32
    assert np.all(b["token_mask"].sum(1) == 12)  # instructions are longer than 12 bytes: truncated, EOS kept
    assert np.all(b["tokens"][:, -1] == tok.eos_token_id)
    ids = np.concatenate([x["dataset_id"] for x in batches])
    assert abs((ids == 0).mean() - 0.75) < 0.085  # 256 samples, weight 3:1 (3 sigma = 0.08)
    allb = {k: np.concatenate([x[k] for x in batches]) for k in b}
    assert np.all(allb["image"][~allb["image_mask"]] == 0)  # frames before the episode start are blank
    valid = allb["action"][allb["action_mask"]]
    assert np.abs(valid[:, :6]).max() <= 1.0 + 1e-6 and set(np.unique(valid[:, 6])) <= {0.0, 1.0}
    assert np.all(allb["action_dim_mask"])
    json.dumps(loader.statistics)
    assert set(loader.statistics) == {"fractal20220817_data", "bridge_dataset"}
    state = json.loads(json.dumps(loader.get_state()))
    assert state["batches"] == 16
    loader.set_state(state)
    assert next(iter(loader))["image"].shape == (16, 2, 32, 32, 3)


def test_mobile_nav_actions_pad_and_dim_mask(oxe_dir, tok, tmp_path):
    loader = _rlds_loader(
        oxe_dir, tok, tmp_path, mixture="bridge_dataset", action_dim=9, augment=False, window_size=1, action_chunk=1
    )
    b = next(iter(loader))
    np.testing.assert_array_equal(b["action_dim_mask"][0], [True] * 7 + [False] * 2)
    assert np.all(b["action"][..., 7:] == 0)
    with pytest.raises(DataError, match="action_dim"):
        _rlds_loader(oxe_dir, tok, tmp_path, mixture="bridge_dataset", action_dim=5)


def test_host_sharding_splits_episodes(oxe_dir):
    spec = oxe.get_spec("bridge_dataset")
    seen = []
    for p in range(2):
        ds, _ = rlds.trajectory_dataset(
            spec, oxe_dir, split="train", process_index=p, process_count=2, shuffle_files=False, with_images=False
        )
        seen.append([t["episode_id"] for t in ds.as_numpy_iterator()])
    assert len(seen[0]) + len(seen[1]) == len(BRIDGE_LENGTHS) and not set(seen[0]) & set(seen[1])


def test_nan_episode_raises_or_is_skipped_and_counted(tmp_path):
    from data_pipelines.errors import BadDataCounter

    root = str(tmp_path / "bad")
    dt.write_fractal_rlds(root, lengths=(4, 5, 3), bad_episode=1)
    spec = oxe.get_spec("fractal20220817_data")
    ds, _ = rlds.trajectory_dataset(spec, root, split="train", shuffle_files=False)
    with pytest.raises(
        Exception, match=r"episode fractal20220817_data-train\.tfrecord-00000-of-00001__1: key `action`"
    ):
        list(ds.as_numpy_iterator())
    counter = BadDataCounter()
    ds, _ = rlds.trajectory_dataset(
        spec, root, split="train", shuffle_files=False, skip_bad_episodes=True, counter=counter
    )
    assert [len(t["action"]) for t in ds.as_numpy_iterator()] == [4, 3]
    assert counter.summary() == {"skipped": 1, "by_reason": {"nonfinite_action": 1}}
    too_short = BadDataCounter()
    ds, _ = rlds.trajectory_dataset(
        spec, root, split="train", shuffle_files=False, skip_bad_episodes=True, counter=too_short, min_episode_length=4
    )
    assert [len(t["action"]) for t in ds.as_numpy_iterator()] == [4]
    assert too_short.by_reason == {"nonfinite_action": 1, "too_short": 1}


def test_loader_turns_bad_data_into_one_data_error(tmp_path, tok):
    root = str(tmp_path / "bad")
    dt.write_fractal_rlds(root, lengths=(4, 5, 3), bad_episode=0)
    with pytest.raises(DataError, match="key `action` has NaN/inf"):
        _rlds_loader(root, tok, tmp_path, mixture="rt_1")


def test_missing_key_and_unknown_config_field_are_clear_errors(oxe_dir, tok, tmp_path):
    bad = oxe.DatasetSpec("bridge_dataset", "image_9", "language_instruction", oxe.vector_open)
    with pytest.raises(DataError, match=r"missing key `image_9`"):
        rlds.trajectory_dataset(bad, oxe_dir, split="train")
    with pytest.raises(DataError, match="unknown field"):
        _rlds_loader(oxe_dir, tok, tmp_path, window=2)
    with pytest.raises(DataError, match="no prepared tfds dataset"):
        _rlds_loader(str(tmp_path / "empty"), tok, tmp_path)


def test_filters_count_dropped_episodes_and_subsample_keeps_order(oxe_dir):
    import tensorflow as tf

    from data_pipelines.errors import BadDataCounter
    from data_pipelines.mixtures import counting_filter

    spec = oxe.get_spec("fractal20220817_data")
    ds, _ = rlds.trajectory_dataset(spec, oxe_dir, split="train", shuffle_files=False, with_images=False)
    counter = BadDataCounter()
    kept = ds.filter(counting_filter(lambda t: tt.actions_within_tf(t, 0.999), counter, "absurd", spec.name))
    limits = [np.abs(expected_fractal(i)).max() for i in range(len(FRACTAL_LENGTHS))]
    n_kept = len(list(kept.as_numpy_iterator()))
    assert n_kept == sum(m <= 0.999 for m in limits) and 0 < n_kept < len(limits)
    assert counter.by_reason == {"absurd": sum(m > 0.999 for m in limits)}
    traj = {"action": tf.range(10, dtype=tf.float32)[:, None], "language_instruction": tf.fill([10], "x")}
    sub = tt.subsample_tf(traj, 4, seed=0)["action"].numpy()[:, 0]
    assert len(sub) == 4 and np.all(np.diff(sub) > 0)
    assert tt.has_instruction_tf({"language_instruction": tf.constant([" ", "a"])}).numpy() == False  # noqa: E712


def test_decode_once_per_trajectory_gives_the_same_batches_as_per_sample(oxe_dir, tok, tmp_path):
    from data_pipelines.mixtures import decode_in_trajectory

    batches = {}
    for mode in ("trajectory", "sample"):
        loader = _rlds_loader(oxe_dir, tok, tmp_path, decode_frames=mode, augment=True)
        it = iter(loader)
        batches[mode] = [next(it) for _ in range(3)]
    for a, b in zip(batches["trajectory"], batches["sample"]):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # auto: small images decode once per trajectory; pre-training's 100k x 16 x 224 px buffer keeps JPEG bytes
    base = dict(shuffle_buffer=256, window_size=2, image_size=48, ram_budget_gb=32, max_steps_per_episode=None)
    assert decode_in_trajectory({**base, "decode_frames": "auto"})
    assert not decode_in_trajectory(
        {**base, "decode_frames": "auto", "shuffle_buffer": 100_000, "window_size": 16, "image_size": 224}
    )
    assert not decode_in_trajectory({**base, "decode_frames": "auto", "max_steps_per_episode": 10})
    with pytest.raises(DataError, match="decode_frames"):
        decode_in_trajectory({**base, "decode_frames": "gpu"})


def test_jpeg_is_decoded_at_the_smallest_scale_that_covers_the_output():
    import tensorflow as tf

    from data_pipelines import frame_transforms as ft

    yy, xx = np.mgrid[0:256, 0:320]
    img = np.stack([(xx + yy) % 256, (2 * xx) % 256, (3 * yy) % 256], -1).astype(np.uint8)
    jpeg, png = tf.io.encode_jpeg(img), tf.io.encode_png(img)
    assert ft.decode_tf(jpeg, 48).shape == (256, 320, 3)  # off by default: policy_io resizes full frames
    assert ft.decode_tf(jpeg, 48, jpeg_scaled=True).shape == (64, 80, 3)  # 1/4: short side 64 >= 48 (1/8: 32)
    assert ft.decode_tf(jpeg, 48, "pad", jpeg_scaled=True).shape == (64, 80, 3)  # long side 80 >= 48; 40 < 48 at 1/8
    assert ft.decode_tf(jpeg, 200, jpeg_scaled=True).shape == (256, 320, 3)  # nothing smaller covers 200 px
    assert ft.decode_tf(png, 48, jpeg_scaled=True).shape == (256, 320, 3)  # PNG has no DCT scaling: full decode
    scaled = ft.decode_and_resize_tf(jpeg, 48, jpeg_scaled=True).numpy().astype(int)
    full = ft.decode_and_resize_tf(tf.io.decode_jpeg(jpeg), 48).numpy().astype(int)
    assert np.abs(scaled - full).mean() < 3.0  # resampling noise only
    np.testing.assert_array_equal(ft.decode_and_resize_tf(jpeg, 48).numpy(), full)  # default: the full decode


def test_data_dir_search_path_finds_each_dataset_in_its_own_folder(tmp_path):
    """`data_dir="A,B"`: a mixture's datasets may live in different folders (co-training: shared set + own data)."""
    from data_pipelines.rlds import find_builder_dir

    for folder, name in (("a", "first"), ("b", "second")):
        (tmp_path / folder / name / "1.0.0").mkdir(parents=True)
        (tmp_path / folder / name / "1.0.0" / "dataset_info.json").write_text("{}")
    search = f"{tmp_path / 'a'},{tmp_path / 'b'}"
    assert find_builder_dir("second", search) == str(tmp_path / "b" / "second" / "1.0.0")
    assert find_builder_dir("first", search) == str(tmp_path / "a" / "first" / "1.0.0")
    with pytest.raises(DataError, match="third: no prepared tfds dataset in any folder of the search path"):
        find_builder_dir("third", search)
