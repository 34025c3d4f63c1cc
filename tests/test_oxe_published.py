"""Every registered OXE dataset on its PUBLISHED feature structure: read, standardize, `vla-jax stats`, the soup.

The fixtures come from `data_pipelines.oxe_schemas.PUBLISHED` (the TFDS catalog's feature
structures, transcribed) through one generic tfds writer, 2 tiny episodes each. Where a
standardization's convention matters (gripper sign/range, which dims), the expected
action is recomputed here in numpy from the raw values the writer wrote.
"""

import json

import numpy as np
import pytest

from data_pipelines import oxe_registry as oxe
from data_pipelines import registry, rlds
from data_pipelines import testing as dt
from data_pipelines.errors import DataError
from data_pipelines.oxe_schemas import PUBLISHED
from data_pipelines.schema import Leaf

EXT = "_converted_externally_to_rlds"


# Values the publishers describe, so the conventions below are exercised on realistic inputs.
def SIGN(rng, e, n):
    """A +-1 scalar per step (viola's relative gripper command)."""
    return rng.choice([-1.0, 1.0], (n,)).astype(np.float32)


def _with_binary_last(width, index):
    def make(rng, e, n):
        a = rng.uniform(-1, 1, (n, width)).astype(np.float32)
        a[:, index] = rng.choice([-1.0, 1.0], n)
        return a

    return make


OVERRIDES = {
    "viola": {"steps/action/gripper_closedness_action": SIGN},
    "taco_play": {"steps/action/rel_actions_world": _with_binary_last(7, 6)},
    "cmu_stretch": {"steps/action": _with_binary_last(8, 6)},
    "iamlab_cmu_pickup_insert" + EXT: {"steps/action": _with_binary_last(8, 7)},
    "droid": {"steps/action_dict/gripper_position": lambda rng, e, n: rng.uniform(0, 1, (n, 1))},
}


def _splits(spec):
    return tuple(dict.fromkeys(s.split("[")[0] for s in (spec.train_split, spec.val_split)))


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """All datasets of the table in one --data-dir, in their published structures -> (dir, raw episodes)."""
    root = str(tmp_path_factory.mktemp("published"))
    raw = {
        name: dt.write_published_rlds(
            name, root, splits=_splits(oxe.get_spec(name)), seed=i, overrides=OVERRIDES.get(name)
        )[1]
        for i, name in enumerate(PUBLISHED)
    }
    return root, raw


@pytest.fixture(scope="module")
def stats_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("stats"))


def _trajectories(name, root):
    spec = oxe.get_spec(name)
    ds, _ = rlds.trajectory_dataset(spec, root, split="train", shuffle_files=False, with_proprio=bool(spec.proprio_dim))
    return list(rlds.iterate_numpy(ds))


def test_every_registered_dataset_has_a_published_schema_and_a_source():
    # Our converter's schema (tested in test_data_mobile) and our Meta-World collector's (test_sim_metaworld*).
    ours = {"mobile_episodes", "mobile_episodes_3d", "metaworld"}
    assert set(oxe.REGISTRY) - ours == set(PUBLISHED)
    for name in PUBLISHED:
        spec = oxe.get_spec(name)
        assert spec.schema_source and spec.expects, name
        assert f"steps/observation/{spec.image_key}" in PUBLISHED[name]
        assert spec.proprio_dim or name in ("kuka", "roboturk"), name  # the two publish no robot state


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_dataset_reads_and_standardizes_on_its_published_schema(published, stats_dir, name):
    root, raw = published
    spec = oxe.get_spec(name)
    _frame_pass(spec, root, stats_dir)
    trajs = _trajectories(name, root)
    assert len(trajs) == len(raw[name]["train"])
    for traj, ep in zip(trajs, raw[name]["train"]):
        n_raw = len(ep["steps/is_first"])
        a = traj["action"]
        assert a.dtype == np.float32 and a.shape[1] == 7 and np.isfinite(a).all()
        assert a.shape[0] == n_raw - {"bridge": 2, "bridge_dataset": 1}.get(name, 0)  # Bridge relabelling drops
        assert ((a[:, 6] >= 0) & (a[:, 6] <= 1)).all()  # canonical gripper: [0 closed, 1 open]
        if spec.proprio_dim:
            assert traj["proprio"].shape == (len(a), spec.proprio_dim) and np.isfinite(traj["proprio"]).all()
        assert all(len(s) > 0 for s in traj["language_instruction"])
        import tensorflow as tf

        frame = tf.io.decode_image(traj["image"][0], channels=3).numpy()
        assert frame.shape == (8, 10, 3)


def _frame_pass(spec, root, stats_dir):
    """The loader's per-dataset path: statistics, window/chunk, normalise, pad, decode - one sample."""
    from data_pipelines import mixtures
    from data_pipelines.errors import BadDataCounter
    from data_pipelines.loader import resolve_config

    stats = rlds.dataset_statistics(spec, root, stats_dir)
    cfg = resolve_config(
        dict(
            data_dir=root,
            mixture=spec.name,
            split="train",
            window_size=2,
            action_chunk=3,
            image_size=16,
            normalization="bounds",
        )
    )
    ds = mixtures.frame_dataset(
        spec,
        stats,
        cfg,
        dataset_id=0,
        train=False,
        seed=0,
        process_index=0,
        process_count=1,
        counter=BadDataCounter(),
        reads=1,
        calls=1,
    )
    sample = next(iter(ds.take(1)))
    frames = mixtures.decode_window(sample, 16, "resize", False, None, None)["image"].numpy()
    assert frames.shape == (2, 16, 16, 3) and frames.dtype == np.uint8
    assert sample["action"].shape == (2, 3, 7) and np.abs(sample["action"].numpy()).max() <= 1.0


def _raw(published, name, key, episode=0):
    return published[1][name]["train"][episode][key]


def test_gripper_conventions_follow_the_documented_choice(published):
    root = published[0]
    # viola: scalar closedness in {-1, +1} (+1 closed) -> openness 1 - clip(g, 0, 1)
    g = _raw(published, "viola", "steps/action/gripper_closedness_action")
    np.testing.assert_array_equal(_trajectories("viola", root)[0]["action"][:, 6], 1 - np.clip(g, 0, 1))
    # taco_play (CALVIN): +1 open, -1 close -> clip to [0, 1]
    a = _raw(published, "taco_play", "steps/action/rel_actions_world")
    np.testing.assert_allclose(_trajectories("taco_play", root)[0]["action"], np.c_[a[:, :6], np.clip(a[:, 6:], 0, 1)])
    # cmu_stretch: dim 6 is the gripper, dim 7 the terminate flag (previously read as the gripper)
    a = _raw(published, "cmu_stretch", "steps/action")
    np.testing.assert_allclose(
        _trajectories("cmu_stretch", root)[0]["action"], np.c_[a[:, :6], np.clip(a[:, 6:7], 0, 1)]
    )
    # iamlab: 1 = open, not inverted (Octo, OpenVLA)
    a = _raw(published, "iamlab_cmu_pickup_insert" + EXT, "steps/action")
    got = _trajectories("iamlab_cmu_pickup_insert" + EXT, root)[0]["action"]
    np.testing.assert_array_equal(got[:, 6], np.clip(a[:, 7], 0, 1))
    np.testing.assert_allclose(got[:, :3], a[:, :3], atol=1e-6)
    # cable routing: no gripper action; the gripper holds the cable -> closed (0)
    assert (_trajectories("berkeley_cable_routing", root)[0]["action"][:, 6] == 0).all()
    # DROID: base-frame cartesian velocity, gripper_position 1 = closed -> 1 - g; float64 -> float32
    d = _trajectories("droid", root)[0]
    np.testing.assert_allclose(
        d["action"][:, :6], _raw(published, "droid", "steps/action_dict/cartesian_velocity"), atol=1e-6
    )
    np.testing.assert_allclose(
        d["action"][:, 6], 1 - _raw(published, "droid", "steps/action_dict/gripper_position")[:, 0], atol=1e-6
    )


def test_language_table_is_planar_with_an_open_gripper_and_a_decoded_instruction(published):
    t = _trajectories("language_table", published[0])[0]
    dxdy = _raw(published, "language_table", "steps/action")
    np.testing.assert_allclose(t["action"], np.c_[dxdy, np.zeros((len(dxdy), 4)), np.ones(len(dxdy))])
    assert t["language_instruction"][0] == b"push the red block to corner 0"


def test_vla_jax_stats_covers_every_dataset_with_action_and_proprio(published, stats_dir, capsys):
    from vla_jax.cli import main

    root = published[0]
    for mixture in ("oxe_magic_soup_plus", "bridge"):
        assert main(["stats", "--mixture", mixture, "--data-dir", root, "--cache-dir", stats_dir]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert {line["dataset"] for line in lines} == set(PUBLISHED)
    for line in lines:
        spec = oxe.get_spec(line["dataset"])
        assert len(line["action"]["mean"]) == 7 and line["action"]["mask"] == [True] * 6 + [False]
        assert line["gripper"]["convention"] == "[0 closed, 1 open]"
        if spec.proprio_dim:
            assert len(line["proprio"]["mean"]) == spec.proprio_dim
    viola = next(line for line in lines if line["dataset"] == "viola")  # its train split: both episodes
    state = np.concatenate(
        [
            np.c_[ep["steps/observation/joint_states"], ep["steps/observation/gripper_states"]]
            for ep in published[1]["viola"]["train"]
        ]
    )
    np.testing.assert_allclose(viola["proprio"]["mean"], state.mean(0), atol=1e-5)
    np.testing.assert_allclose(viola["proprio"]["q99"], np.quantile(state, 0.99, axis=0), atol=1e-5)
    assert viola["num_transitions"] == len(state)


def test_magic_soup_plus_loads_as_a_whole(published, stats_dir):
    from data_pipelines.loader import make_loader
    from data_pipelines.tokenize import ByteTokenizer

    cfg = dict(
        kind="rlds_mixture",
        data_dir=published[0],
        split="train",
        window_size=2,
        action_chunk=2,
        image_size=16,
        instruction_length=16,
        stats_cache_dir=stats_dir,
        shuffle_buffer=32,
        mixture="oxe_magic_soup_plus",
    )
    soup = make_loader(cfg, tokenizer=ByteTokenizer(), global_batch_size=16, seed=1)
    assert set(soup.statistics) == {n for n, _ in oxe.get_mixture("oxe_magic_soup_plus")} == set(PUBLISHED) - {"bridge"}
    seen = set()
    for _, b in zip(range(4), soup):
        assert b["image"].shape == (16, 2, 16, 16, 3) and b["action"].shape == (16, 2, 2, 7)
        assert np.isfinite(b["action"]).all() and np.abs(b["action"]).max() <= 1.0
        seen |= set(b["dataset_id"].tolist())
    assert len(seen) >= 10  # 64 samples over 27 weighted datasets (deterministic seed)


def test_schema_mismatch_is_one_data_error_before_tensorflow(tmp_path):
    """viola published with a [1] gripper instead of the scalar: named dataset, key, expected and found."""
    table = {**PUBLISHED["viola"], "steps/action/gripper_closedness_action": Leaf("float32", (1,))}
    dt.write_published_rlds("viola", str(tmp_path), table=table, splits=("train", "test"))
    with pytest.raises(DataError) as err:
        rlds.trajectory_dataset(oxe.get_spec("viola"), str(tmp_path), split="train")
    msg = str(err.value)
    assert (
        "dataset viola" in msg and "`steps/action/gripper_closedness_action` is float32[1], expected float32[]" in msg
    )
    assert "\n" not in msg and "catalog/viola" in msg


def test_published_names_and_aliases_find_the_dataset_directory(tmp_path):
    """`fmb` is the catalog's name; Octo/OpenVLA copies live in `fmb_dataset/`: both names, both folders work."""
    dt.write_published_rlds("fmb", str(tmp_path), directory="fmb_dataset")
    for name in ("fmb", "fmb_dataset"):
        assert registry.get_mixture(name) == [("fmb", 1.0)]
        ds, builder = rlds.trajectory_dataset(registry.get_spec(name), str(tmp_path), split="train", with_images=False)
        assert builder.data_dir.endswith("fmb_dataset/0.1.0") and len(list(ds)) == 2
