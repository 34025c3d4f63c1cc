"""Bring your own dataset: one declared only in a registry file works with every command that names datasets.

The dataset (`my_arm`: 32 px frames, [dx, dy, dz, gripper] with the gripper in `[-1 open, +1 close]`,
train and val splits) is written with the generic writer and declared in a TOML file; `stats`,
`inspect-data`, `train`, `eval-offline` and `export` each get `--registry FILE` and nothing else.
"""

import dataclasses
import json
import types

import numpy as np
import pytest
import tiny_arm_config

from data_pipelines import registry, rlds
from data_pipelines import rlds_writer as rw
from data_pipelines.action_spaces import ActionSpace
from data_pipelines.errors import DataError
from vla_jax.cli import main
from vla_jax.sim.metaworld.tasks import INSTRUCTIONS

NAME = "my_arm"
SIZE = tiny_arm_config.SIZE
REGISTRY_FILE = f"""
[[dataset]]
name = "{NAME}"
image_key = "image"
language_key = "language_instruction"
action_key = "action"
continuous = [0, 3]
gripper_index = 3
gripper = "[-1 open, +1 close]"
train_split = "train"
val_split = "val"
"""


def episodes(n, length, seed):
    rng = np.random.default_rng(seed)
    instructions = sorted(INSTRUCTIONS.values())  # what tiny_arm_config's tokenizer is trained on
    for i in range(n):
        action = rng.uniform(-0.5, 0.5, (length, 4)).astype(np.float32)
        action[:, 3] = np.where(np.arange(length) < length // 2, -1.0, 1.0)  # open, then close
        yield {
            "observation": {"image": rng.integers(0, 256, (length, SIZE, SIZE, 3), np.uint8)},
            "action": action,
            "language_instruction": instructions[i % len(instructions)],
        }


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("byo")
    spec = rw.EpisodeSpec(observation={"image": rw.Image(SIZE, "png")}, action=rw.Tensor(4))
    rw.write_dataset(str(root / "rlds"), NAME, spec, {"train": episodes(4, 6, 0), "val": episodes(2, 6, 1)})
    (root / "registry.toml").write_text(REGISTRY_FILE)
    yield root
    if NAME in registry.REGISTRY:
        registry.unregister(NAME)


def registry_args(folder):
    return ["--registry", str(folder / "registry.toml")]


def test_stats_knows_the_dataset_only_through_the_registry_file(folder, capsys):
    args = ["stats", "--mixture", NAME, "--data-dir", str(folder / "rlds"), "--cache-dir", str(folder / "stats")]
    if NAME not in registry.REGISTRY:
        assert main(args) == 2 and f"mixture {NAME!r} is unknown" in capsys.readouterr().err
    assert main([*args, *registry_args(folder)]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["action"]["mask"] == [True, True, True, False] and stats["num_trajectories"] == 4
    assert stats["gripper"] == {"convention": "[-1 open, 1 closed]", "canonical": "[0 closed, 1 open]"}
    assert (stats["action"]["min"][3], stats["action"]["max"][3]) == (0.0, 1.0)  # trained on as an opening


def test_a_declared_statistics_file_is_used_instead_of_computing(folder, capsys):
    name, here = f"{NAME}_declared", folder / "declared"
    declared = {"mean": [0.0] * 4, "std": [1.0] * 4, "min": [-2.0] * 4, "max": [2.0] * 4, "q01": [-1.5] * 4}
    here.mkdir(exist_ok=True)
    (here / "stats.json").write_text(json.dumps({"action": {**declared, "q99": [1.5] * 4}}))
    (here / "short.json").write_text(json.dumps({"action": {k: [0.0] for k in [*declared, "q99"]}}))
    entry = REGISTRY_FILE.replace(f'name = "{NAME}"', f'name = "{name}"\nbuilder_name = "{NAME}"')
    args = ["stats", "--data-dir", str(folder / "rlds"), "--cache-dir", str(folder / "stats"), "--mixture", name]
    try:
        for file, stats_file in (("ok.toml", "stats.json"), ("short.toml", "short.json")):
            (here / file).write_text(f'{entry}statistics = "{stats_file}"\n')  # relative to the registry file
        assert main([*args, "--registry", str(here / "ok.toml")]) == 0
        stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert stats["action"]["min"] == [-2.0] * 4 and stats["action"]["mask"] == [True, True, True, False]
        assert stats["source"] == str(here / "stats.json") and stats["gripper"]["convention"] == "[-1 open, 1 closed]"
        registry.unregister(name)
        assert main([*args, "--registry", str(here / "short.toml")]) == 2
        assert f"short.json: action mean has 1 values; dataset {name} has 4 dims" in capsys.readouterr().err
    finally:
        if name in registry.REGISTRY:
            registry.unregister(name)


def test_inspect_data_with_the_registry_file(folder, capsys):
    out = folder / "grid.png"
    args = ["inspect-data", "--mixture", NAME, "--data-dir", str(folder / "rlds"), "--batches", "1"]
    args += ["--batch-size", "2", "--image-size", str(SIZE), "--shuffle-buffer", "4", "--out", str(out)]
    assert main([*args, "--stats-cache-dir", str(folder / "stats"), *registry_args(folder)]) == 0
    assert out.stat().st_size > 0 and NAME in capsys.readouterr().out


@pytest.fixture(scope="module")
def workdir(folder):
    extra = [*registry_args(folder), f"--config.data.config.mixture={NAME}"]
    return tiny_arm_config.train(folder, extra_args=extra)


def test_train_with_the_registry_file_records_the_declared_gripper(workdir):
    stats = json.loads((workdir / "statistics.json").read_text())[NAME]
    assert stats["gripper"]["convention"] == "[-1 open, 1 closed]" and stats["normalization"] == "bounds"


def test_eval_offline_with_the_registry_file_scores_the_declared_val_split(folder, workdir):
    out = folder / "offline.json"
    args = ["eval-offline", "--workdir", str(workdir), "--data", str(folder / "rlds"), "--batch-size", "4"]
    assert main([*args, "--out", str(out), *registry_args(folder)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["frames"] == 12  # the val split's 2 x 6 frames, not the train split's


def test_export_with_the_registry_file_returns_the_datasets_gripper_convention(folder, workdir, capsys):
    from vla_runtime import Policy

    export = folder / "export"
    assert main(["export", "--workdir", str(workdir), "--out", str(export), *registry_args(folder)]) == 0
    assert json.loads((export / "statistics.json").read_text())["gripper"]["convention"] == "[-1 open, 1 closed]"
    policy = Policy.load(str(export))
    frame = np.random.default_rng(3).integers(0, 256, (SIZE, SIZE, 3), np.uint8)
    policy.reset(INSTRUCTIONS["reach-v3"])
    opening = policy.predict_normalized(frame)[:, 3]
    policy.reset(INSTRUCTIONS["reach-v3"])
    gripper = policy.step(frame)[:, 3]
    assert np.all((gripper >= -1) & (gripper <= 1))
    np.testing.assert_allclose(gripper, 1.0 - 2.0 * np.clip(opening, 0, 1), atol=1e-5)  # effort, not opening

    # The registry now declares another convention than the workdir was trained with: refused, one line.
    spec = registry.get_spec(NAME)
    other = ActionSpace(continuous=3, gripper="[0 closed, 1 open]")
    registry.register(dataclasses.replace(spec, action_space=other), overwrite=True)
    try:
        assert main(["export", "--workdir", str(workdir), "--out", str(folder / "export2")]) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]  # (tqdm lines aside)
        assert len(errors) == 1 and "registry entry declares [0 closed, 1 open]" in errors[0]
    finally:
        registry.register(spec, overwrite=True)


def test_no_val_split_is_said_once_when_training_and_refused_when_evaluating(caplog):
    spec = registry.DatasetSpec("no_val_arm", "image", None, lambda s: s, action_space="nav2")
    assert spec.train_split == "train" and spec.val_split is None  # nothing held out unless declared
    builder = types.SimpleNamespace(info=types.SimpleNamespace(splits={"train": None}), data_dir="/data/no_val_arm")
    with caplog.at_level("WARNING", logger="data_pipelines"):
        assert rlds.resolve_split(spec, builder, train=True) == "train"
        assert rlds.resolve_split(spec, builder, train=True) == "train"
    assert sum("no val split" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(DataError, match="no val split .* declare one"):
        rlds.resolve_split(spec, builder, train=False)
    with_val = types.SimpleNamespace(info=types.SimpleNamespace(splits={"train": None, "val": None}), data_dir="/d")
    assert rlds.resolve_split(spec, with_val, train=False) == "val"


def test_tokenizer_from_the_datasets_instructions(folder, capsys):
    from data_pipelines.tokenize import load_tokenizer

    out = folder / "tokenizer_from_data"
    args = ["tokenizer", "--from-dataset", NAME, "--data-dir", str(folder / "rlds"), "--out", str(out)]
    assert main([*args, "--vocab-size", "300", *registry_args(folder)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    seen = sorted(INSTRUCTIONS.values())[:4]  # the train split's 4 episodes
    assert summary["episodes_instructions"] == 4 and summary["distinct_instructions"] == 4
    tok = load_tokenizer(str(out))
    ids = tok(seen[0])["input_ids"]
    assert len(ids) < len(seen[0].encode())  # merges learned from these instructions, not bytes only
    assert tok.decode(ids, skip_special_tokens=True) == seen[0]
    assert summary["longest_instruction_tokens"] >= len(ids) and summary["vocab_size"] <= 300
