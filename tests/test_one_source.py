"""One source per knob: every default overrides from the command line, shapes derive from the model,
convert-episodes --name reaches the loader, and old workdir configs still read."""

import dataclasses
import json

import ml_collections
import pytest

from data_pipelines import loader
from data_pipelines import testing as dt
from data_pipelines.errors import DataError
from vla_jax import cli
from vla_jax.errors import VLAJaxError
from vla_jax.train import checkpoint
from vla_jax.train.config import flat_keys, load_config, load_config_file
from vla_jax.train.defaults import base_config
from vla_jax.train.model import data_shapes, loader_config, vla_config
from vla_jax.vla import VLAConfig

CONFIGS = [
    "configs/tiny.py",
    "configs/demo.py:/tmp/demo",
    "configs/posttrain_mobile_kosmos2.py",
    "configs/pretrain_oxe_kosmos2.py",
    "configs/metaworld_small.py",
    "configs/metaworld_mt50.py",
]


def _sample_text(holder: ml_collections.ConfigDict, leaf: str) -> tuple[str, object]:
    """A command-line value of the field's own type, different from its default, and what it parses to."""
    kind, value = holder.get_type(leaf), holder[leaf]
    if kind is bool:
        return str(not value).lower(), (not value)
    if kind is int:
        return str((value or 0) + 3), (value or 0) + 3
    if kind is float:
        return "0.25", 0.25
    if kind is tuple:
        return str(tuple(v * 0.5 for v in value)), tuple(v * 0.5 for v in value)
    return "something_else", "something_else"


def test_every_data_loader_default_is_in_base_config_and_overrides_from_the_command_line():
    base = base_config()
    data = base.data.config
    assert set(data.keys()) == set(loader.DEFAULTS) - set(loader.SHAPE_KEYS)
    assert set(data.augment_kwargs.keys()) == {
        "crop_scale",
        "crop_ratio",
        "brightness",
        "contrast",
        "saturation",
        "hue",
    }
    leaves = [
        k for k in flat_keys(data) if not isinstance(data[k.split(".")[0]], ml_collections.ConfigDict) or "." in k
    ]
    overrides, expected = [], {}
    for key in leaves:
        holder = data
        *parents, leaf = key.split(".")
        for p in parents:
            holder = holder[p]
        text, value = _sample_text(holder, leaf)
        if key == "kind":
            text, value = "mobile_grain", "mobile_grain"
        if key == "normalization":
            text, value = "normal", "normal"
        overrides.append(f"--config.data.config.{key}={text}")
        expected[key] = value
    config = load_config("configs/tiny.py", overrides)
    for key, value in expected.items():
        got = config.data.config
        for part in key.split("."):
            got = got[part]
        assert got == value, key
    assert load_config("configs/demo.py:/tmp/d", ["--config.data.config.worker_count=8"]).data.config.worker_count == 8


@pytest.mark.parametrize("spec", CONFIGS)
def test_shipped_configs_state_each_shape_once(spec):
    config = load_config_file(spec)
    assert set(flat_keys(base_config())) - {"model"} <= set(flat_keys(config))  # nothing pruned: all overridable
    assert not set(config.data.config.keys()) & set(loader.SHAPE_KEYS)
    shapes = data_shapes(config)
    assert shapes == {
        "window_size": config.model.window_size,
        "action_chunk": config.model.action_chunk,
        "action_dim": config.model.action_dim,
        "image_size": config.model.backbone.vision.image_size,
        "instruction_length": config.data.instruction_length,
    }
    # Every policy knob with a default is overridable, whichever fields the file sets (with_model_defaults).
    knobs = {f.name for f in dataclasses.fields(VLAConfig) if f.default is not None and f.name != "backbone"}
    assert knobs <= set(config.model), sorted(knobs - set(config.model))
    # A model override moves the data with it: nothing to keep in sync by hand.
    moved = load_config(spec, [("model.window_size", "3"), ("data.instruction_length", "9")])
    assert loader_config(moved)["window_size"] == 3 and loader_config(moved)["instruction_length"] == 9


def test_a_policy_knob_the_file_leaves_out_is_overridable():
    """configs/tiny.py never names discrete_decoding; the command line can still choose it."""
    assert "discrete_decoding" not in open("configs/tiny.py").read()
    config = load_config(
        "configs/tiny.py",
        ["--config.model.structure=one_step_discrete", "--config.model.head=discrete"]
        + ["--config.model.discrete_decoding=parallel"],
    )
    assert vla_config(config).parallel_decoding
    assert not vla_config(load_config("configs/tiny.py")).parallel_decoding  # the default: autoregressive


def test_stating_a_shape_twice_is_an_error(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import importlib.util\n"
        "spec = importlib.util.spec_from_file_location('t', 'configs/tiny.py')\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "def get_config(arg=None):\n"
        "    c = m.get_config()\n"
        "    c.data.config.window_size = 2\n"
        "    return c\n"
    )
    with pytest.raises(VLAJaxError, match="data shapes derive from the model"):
        load_config_file(str(bad))
    code = cli.main(
        [
            "train",
            "--config",
            "configs/tiny.py",
            "--workdir",
            str(tmp_path / "w"),
            "--config.data.config.action_chunk=4",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--config.model.action_chunk" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(VLAJaxError, match="is a group"):
        load_config("configs/tiny.py", [("data.config", "3")])


def test_group_override_sets_fields_and_keeps_the_others():
    config = load_config(
        "configs/tiny.py", ["--config.optimizer={'learning_rate': 0.5, 'b1': 0.8}", "--config.lora.rank", "4"]
    )
    assert (config.optimizer.learning_rate, config.optimizer.b1, config.optimizer.b2) == (0.5, 0.8, 0.999)
    assert config.lora.rank == 4


def test_old_workdir_config_keys_are_upgraded_on_read(tmp_path):
    old = json.loads(base_config().to_json())
    old["model"] = {"window_size": 2, "fwd_pred_next_n": 4, "action_dim": 2}
    old["data"]["config"] = {
        "kind": "mobile_grain",
        "window_size": 2,
        "action_chunk": 4,
        "max_text_len": 16,
        "resize_pad": True,
    }
    (tmp_path / "config.json").write_text(json.dumps(old))
    config = checkpoint.read_config(tmp_path)
    assert config.model.action_chunk == 4 and "fwd_pred_next_n" not in config.model
    assert set(config.data.config.keys()) == {"kind", "resize_mode"} and config.data.config.resize_mode == "pad"


def test_convert_episodes_name_reaches_the_grain_loader(tmp_path, capsys):
    from data_pipelines.tokenize import ByteTokenizer

    src = tmp_path / "h5"
    for i in range(3):
        dt.write_mobile_episode(str(src), stamp=f"2024070{i + 1}_080000", num_frames=4, seed=i)
    assert (
        cli.main(
            [
                "convert-episodes",
                "--src",
                str(src),
                "--out",
                str(tmp_path / "rlds"),
                "--image-size",
                "16",
                "--val-fraction",
                "0",
                "--action-dim",
                "3",
                "--name",
                "lab_robot",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["dataset"].endswith("lab_robot/1.0.0")
    cfg = dict(
        kind="mobile_grain",
        data_dir=str(tmp_path / "rlds"),
        window_size=1,
        action_chunk=1,
        action_dim=3,
        image_size=16,
        instruction_length=64,
        stats_cache_dir=str(tmp_path / "stats"),
        augment=False,
    )
    with pytest.raises(DataError, match="dataset_name=NAME"):
        loader.make_loader(cfg, tokenizer=ByteTokenizer(), global_batch_size=2)
    # The dataset's own name keys its statistics (what `export --dataset` picks), and its 3-D actions pick
    # the 3-D mobile spec without saying so a second time.
    got = loader.make_loader({**cfg, "dataset_name": "lab_robot"}, tokenizer=ByteTokenizer(), global_batch_size=2)
    batch = next(iter(got))
    assert list(got.statistics) == ["lab_robot"] and batch["action"].shape == (2, 1, 1, 3)


def test_a_batch_that_does_not_fit_the_model_is_one_clear_error():
    from vla_jax.train.loop import make_data
    from vla_jax.train.model import check_batch

    config = load_config("configs/tiny.py")
    batch = make_data(config, 0, 1).batch_at(0)
    check_batch(config, batch)
    with pytest.raises(VLAJaxError, match=r"'image'.*\(8, 2, 16, 32, 3\) != \(8, 2, 32, 32, 3\)"):
        check_batch(config, {**batch, "image": batch["image"][:, :, :16]})
    with pytest.raises(VLAJaxError, match="does not fit config.model"):
        check_batch(config, {k: v for k, v in batch.items() if k != "dataset_id"})
