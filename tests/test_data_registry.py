"""Names (one namespace, aliases), declared action spaces, a user's own registry file, content-keyed statistics."""

import json
import textwrap

import numpy as np
import pytest

from data_pipelines import action_spaces, registry, rlds
from data_pipelines import testing as dt
from data_pipelines.action_spaces import ActionSpace, GripperConvention
from data_pipelines.errors import DataError
from data_pipelines.schema import Leaf


@pytest.fixture
def clean_registry():
    """Undo what a test registers (the registry is process-global)."""
    registry.get_spec("bridge")  # built-ins loaded before the snapshot
    datasets, mixtures, aliases = dict(registry.REGISTRY), dict(registry.MIXTURES), dict(registry._ALIASES)
    yield
    for table, saved in ((registry.REGISTRY, datasets), (registry.MIXTURES, mixtures), (registry._ALIASES, aliases)):
        table.clear()
        table.update(saved)


def test_one_namespace_for_datasets_and_mixtures(clean_registry):
    names = set(registry.REGISTRY) | set(registry._ALIASES)
    assert not names & set(registry.MIXTURES)
    # The OXE copy of Bridge is reachable by its published name; BridgeData V2 by its own and OpenVLA's.
    assert registry.get_mixture("bridge") == [("bridge", 1.0)]
    assert registry.get_mixture("bridge_orig") == registry.get_mixture("bridge_dataset") == [("bridge_dataset", 1.0)]
    with pytest.raises(DataError, match="already dataset bridge"):
        registry.register_mixture("bridge", [("bridge_dataset", 1.0)])
    with pytest.raises(DataError, match="already mixture oxe_magic_soup"):
        registry.register(registry.DatasetSpec("oxe_magic_soup", "image", None, lambda s: s))
    with pytest.raises(DataError, match="already dataset fmb"):
        registry.register(registry.DatasetSpec("other", "image", None, lambda s: s, aliases=("fmb_dataset",)))
    with pytest.raises(DataError, match="weights must be > 0"):
        registry.register_mixture("zero", [("bridge", 0.0)])


def test_gripper_conventions_parse_and_map_both_ways():
    meta = GripperConvention.parse("[-1 open, +1 close]")
    assert (meta.open_value, meta.closed_value) == (-1.0, 1.0) and str(meta) == "[-1 open, 1 closed]"
    np.testing.assert_allclose(meta.to_canonical(np.array([-1.0, 0.0, 1.0, 3.0])), [1.0, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(meta.from_canonical(np.array([1.0, 0.0])), [-1.0, 1.0])
    assert GripperConvention.parse("[0 closed, 1 open]").is_canonical
    for bad in ("[0 closed, 1 closed]", "open", "[0 shut, 1 open]"):
        with pytest.raises(DataError, match="gripper convention"):
            action_spaces.parse_gripper(bad)
    space = ActionSpace(continuous=3, gripper="[-1 open, +1 close]")  # Meta-World's [dx, dy, dz, grip]
    assert space.dim == 4 and space.normalize_mask == [True, True, True, False]
    assert ActionSpace(continuous=2).dim == 2
    with pytest.raises(DataError, match="has no dims"):
        ActionSpace(continuous=0)


USER_TABLE = {  # a 4-D [dx, dy, dz, gripper] robot with Meta-World's "-1 open, +1 close", RLDS template layout
    "steps/action": Leaf("float32", (4,)),
    "steps/observation/image": Leaf("uint8", (8, 10, 3), image=True),
    "steps/observation/state": Leaf("float32", (5,)),
    "steps/language_instruction": Leaf("string"),
    "steps/is_first": Leaf("bool"),
    "steps/is_last": Leaf("bool"),
    "steps/is_terminal": Leaf("bool"),
    "steps/reward": Leaf("float32"),
    "episode_metadata/file_path": Leaf("string"),
}


def _grip_sign(rng, e, n):
    a = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    a[:, 3] = rng.choice([-1.0, 1.0], n)
    return a


@pytest.mark.parametrize("kind", ["toml", "json", "py"])
def test_user_registry_file_registers_a_declared_dataset(tmp_path, clean_registry, kind, capsys):
    root = str(tmp_path / "data")
    _, raw = dt.write_published_rlds(
        "my_arm", root, table=USER_TABLE, episodes=2, steps=4, overrides={"steps/action": _grip_sign}
    )
    entry = dict(
        name="my_arm",
        image_key="image",
        language_key="language_instruction",
        action_key="action",
        continuous=[0, 3],
        gripper_index=3,
        gripper="[-1 open, +1 close]",
        train_split="train",
        val_split="train",
        proprio_key="observation/state",
        proprio_dim=5,
    )
    path = tmp_path / f"reg.{kind}"
    if kind == "toml":
        path.write_text(
            "[[dataset]]\n"
            + "".join(f"{k} = {json.dumps(v)}\n" for k, v in entry.items())
            + '\n[mixture]\nmy_mix = [["my_arm", 2.0], ["bridge", 1.0]]\n'
        )
    elif kind == "json":
        path.write_text(json.dumps({"dataset": [entry], "mixture": {"my_mix": [["my_arm", 2.0], ["bridge", 1.0]]}}))
    else:
        path.write_text(
            textwrap.dedent("""
            from data_pipelines import registry
            registry.register(registry.DatasetSpec(
                "my_arm", "image", "language_instruction",
                registry.vector_standardization("action", 0, 3, 3, "observation/state"), proprio_dim=5,
                action_space=registry.ActionSpace(3, "[-1 open, +1 close]"), train_split="train", val_split="train"))
            registry.register_mixture("my_mix", [("my_arm", 2.0), ("bridge", 1.0)])
        """)
        )
    assert registry.load_user_registry(str(path)) == ["my_arm", "my_mix"]
    assert registry.get_mixture("my_mix") == [("my_arm", 2.0), ("bridge", 1.0)]
    spec = registry.get_spec("my_arm")
    ds, _ = rlds.trajectory_dataset(spec, root, split="train", shuffle_files=False, with_images=False)
    got = np.concatenate([t["action"] for t in rlds.iterate_numpy(ds)])
    a = np.concatenate([ep["steps/action"] for ep in raw["train"]])
    np.testing.assert_allclose(got, np.c_[a[:, :3], (1 - a[:, 3]) / 2])  # -1 (open) -> 1, +1 (closed) -> 0
    # `vla-jax stats --registry FILE` (a fresh process would need the file; here it is already loaded,
    # so register again must be refused - and a fresh registration through the flag works after reset)
    registry.unregister("my_arm")
    registry.MIXTURES.pop("my_mix")
    from vla_jax.cli import main

    assert (
        main(
            [
                "stats",
                "--registry",
                str(path),
                "--mixture",
                "my_arm",
                "--data-dir",
                root,
                "--cache-dir",
                str(tmp_path / "stats"),
            ]
        )
        == 0
    )
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["gripper"]["convention"] == "[-1 open, 1 closed]" and line["action"]["mask"] == [True] * 3 + [False]
    state = np.concatenate([ep["steps/observation/state"] for ep in raw["train"]])
    np.testing.assert_allclose(line["proprio"]["mean"], state.mean(0), atol=1e-5)


def test_user_registry_errors_are_one_line(tmp_path, clean_registry):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[dataset]]\nname = "x"\nimage_key = "image"\naction_key = "action"\ncontinuous = [0, 6]\n'
        "gripper_index = 6\nspeed = 3\n"
    )
    with pytest.raises(DataError, match=r"unknown key\(s\) \['speed'\]"):
        registry.load_user_registry(str(bad))
    bad.write_text(
        '[[dataset]]\nname = "x"\nimage_key = "image"\naction_key = "action"\ncontinuous = [0, 6]\ngripper_index = 6\n'
    )
    with pytest.raises(DataError, match="give both `gripper_index` and `gripper`"):
        registry.load_user_registry(str(bad))
    with pytest.raises(DataError, match="not found"):
        registry.load_user_registry(str(tmp_path / "missing.toml"))


def test_statistics_cache_is_keyed_by_content_not_file_sizes(tmp_path):
    """Re-converting with different float32 actions gives identically sized files: the cache must notice."""
    spec = registry.get_spec("dobbe")
    for i, scale in enumerate((1.0, 3.0)):
        root = str(tmp_path / f"data{i}")
        _, raw = dt.write_published_rlds(
            "dobbe",
            root,
            seed=0,
            overrides={"steps/action": lambda rng, e, n, s=scale: np.full((n, 7), s * (e + 1), np.float32)},
        )
        stats = rlds.dataset_statistics(spec, root, cache_dir=str(tmp_path / "cache"))
        n_train = rlds.open_builder(spec, root).info.splits[spec.train_split].num_examples
        train = [ep["steps/action"] for ep in raw["train"][:n_train]]
        np.testing.assert_allclose(stats["action"]["mean"][:6], np.concatenate(train)[:, :6].mean(0))
    sizes = [
        sorted(p.stat().st_size for p in (tmp_path / f"data{i}" / "dobbe" / "0.1.0").glob("*.tfrecord*"))
        for i in range(2)
    ]
    assert sizes[0] == sizes[1]  # same bytes count: a size-keyed cache would have served stale statistics
    assert len(list((tmp_path / "cache").glob("dobbe_*.json"))) == 2
