"""`vla-jax convert-episodes --format npz`: one .npz per episode -> our RLDS dataset; bad files are one line."""

import json

import numpy as np
import pytest

from data_pipelines import registry, rlds
from data_pipelines.errors import DataError
from vla_jax.cli import main
from vla_runtime.policy_io import resize_frame


def write_episodes(folder, lengths=(5, 4, 6), size=40, state=True, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    episodes = []
    for i, n in enumerate(lengths):
        ep = {
            "image": rng.integers(0, 256, (n, size, size + 8, 3), np.uint8),
            "action": rng.uniform(-1, 1, (n, 4)).astype(np.float64),
            "instruction": np.str_(f"task number {i}"),
        }
        if state:
            ep["state"] = rng.normal(size=(n, 3)).astype(np.float32)
        np.savez(folder / f"ep_{i:03d}.npz", **ep)
        episodes.append(ep)
    return episodes


def convert(src, out, *extra):
    return main(["convert-episodes", "--format", "npz", "--src", str(src), "--out", str(out), *extra])


def test_npz_episodes_convert_with_frames_actions_state_and_explicit_splits(tmp_path, capsys):
    episodes = write_episodes(tmp_path / "src")
    args = ["--name", "my_npz", "--image-size", "16", "--encoding", "png", "--val-fraction", "0.34"]
    assert convert(tmp_path / "src", tmp_path / "rlds", *args) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["splits"] == {"train": 2, "val": 1} and printed["skipped"] == 0

    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(printed["dataset"])
    got = [list(tfds.as_numpy(e["steps"])) for e in builder.as_dataset(split="train")]
    for ep, steps in zip(episodes[:2], got):
        assert len(steps) == len(ep["action"])
        np.testing.assert_array_equal(steps[0]["observation"]["image"], resize_frame(ep["image"][0], (16, 16)))
        np.testing.assert_allclose(np.stack([s["action"] for s in steps]), ep["action"].astype(np.float32))
        np.testing.assert_allclose(np.stack([s["observation"]["state"] for s in steps]), ep["state"])
        assert steps[0]["language_instruction"].decode() == str(ep["instruction"])
    # A registry entry reads it like any RLDS dataset (declared 3 continuous dims + a [0 closed, 1 open] gripper).
    spec = registry.DatasetSpec(
        "my_npz",
        "image",
        "language_instruction",
        lambda s: s,
        action_space=registry.ActionSpace(continuous=3, gripper="[0 closed, 1 open]"),
        val_split="val",
    )
    ds, _ = rlds.trajectory_dataset(spec, str(tmp_path / "rlds"), train=False, with_images=False)
    assert [len(t["action"]) for t in rlds.iterate_numpy(ds)] == [6]


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda ep: ep.pop("action"), r"ep_001.npz: no key `action` \(has .*\); save it under that name or pass"),
        (lambda ep: ep.update(image=ep["image"].astype(np.float32)), r"ep_001.npz: key `image` has dtype float32"),
        (lambda ep: ep.update(action=ep["action"][:-1]), r"ep_001.npz: key `action` has 3 steps but `image` has 4"),
        (lambda ep: ep.update(action=np.full((4, 4), np.nan)), r"ep_001.npz: key `action` has NaN/inf"),
        (lambda ep: ep.update(action=np.zeros((4, 5))), r"ep_001.npz: `action` has dims \(5,\) but ep_000.npz has"),
        (lambda ep: ep.pop("instruction"), r"ep_001.npz: no key `instruction`; .* --instruction TEXT"),
    ],
)
def test_bad_npz_files_are_one_line_errors_naming_file_key_and_fix(tmp_path, damage, match):
    write_episodes(tmp_path / "src", state=False)
    bad = tmp_path / "src" / "ep_001.npz"
    ep = dict(np.load(bad))
    damage(ep)
    np.savez(bad, **ep)
    with pytest.raises(DataError, match=match):
        main(["--debug", "convert-episodes", "--format", "npz", "--src", str(tmp_path / "src"), "--out", str(tmp_path)])


def test_skip_bad_episodes_counts_them_and_garbage_is_refused(tmp_path, capsys):
    write_episodes(tmp_path / "src", state=False)
    (tmp_path / "src" / "ep_001.npz").write_bytes(b"not a zip")
    assert convert(tmp_path / "src", tmp_path / "rlds", "--image-size", "16") == 2
    assert "ep_001.npz: not a readable .npz file" in capsys.readouterr().err
    assert convert(tmp_path / "src", tmp_path / "rlds", "--image-size", "16", "--skip-bad-episodes") == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["splits"] == {"train": 2} and printed["skipped"] == 1
