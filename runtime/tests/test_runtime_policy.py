"""Policy API on tiny random exports: incremental == full window, errors, ensembling, int8 load."""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from runtime_helpers import FAMILIES, write_tiny_export

from vla_runtime import InputError, Policy, RuntimeConfigError
from vla_runtime.policy_io import Preprocessing

CASES = [
    ("policy_head", "lstm"),
    ("policy_head", "gpt"),
    ("policy_head", "mlp"),
    ("interleaved", "mlp"),
    ("one_step_continuous", "mlp"),
    ("one_step_discrete", "discrete"),
    ("one_step_discrete", "discrete", "parallel"),
]


def _export(out_dir, case, **kw):
    decoding = {"discrete_decoding": case[2]} if len(case) > 2 else {}
    return write_tiny_export(out_dir, structure=case[0], head=case[1], **decoding, **kw)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    return {case: _export(str(root / "_".join(case)), case) for case in CASES}


@pytest.fixture(scope="module")
def family_exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("family_exports")
    return {
        (family, case): _export(str(root / f"{family}_{'_'.join(case)}"), case, model_type=family)
        for family in FAMILIES[1:]
        for case in CASES
    }


def _frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (24 + 3 * i, 30, 3), dtype=np.uint8) for i in range(n)]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_incremental_equals_full_window(exports, family_exports, family, case):
    """Every backbone family x structure: the KV-cache / cached-feature step equals re-running the window."""
    export = exports[case] if family == "kosmos-2" else family_exports[(family, case)]
    inc = Policy.load(export, incremental=True)
    full = Policy.load(export, incremental=False)
    for p in (inc, full):
        p.reset("Navigate around the obstacle on the left side and reach the target")
    diffs = []
    for frame in _frames(6):  # window 3: covers the growing and the sliding window
        a, b = inc.predict_normalized(frame), full.predict_normalized(frame)
        assert a.shape == (2, 3)
        diffs.append(np.abs(a - b).max())
    assert max(diffs) <= 1e-5, diffs
    assert np.abs(b).max() > 1e-3  # not trivially zero


def test_step_returns_robot_units_and_ensembles(exports):
    p = Policy.load(exports[("policy_head", "lstm")], mode="ensemble", ensemble_decay=0.5)
    p.reset("move forward slowly, then turn left")
    stats = p.statistics
    chunks = [p.step(f) for f in _frames(3)]
    for c in chunks:
        assert c.dtype == np.float32 and c.shape == (2, 3)
        assert np.all(c >= stats.min - 1e-6) and np.all(c <= stats.max + 1e-6)
    # Row 0 at step 3 mixes this step's first action with the previous step's second one.
    ref = Policy.load(exports[("policy_head", "lstm")], mode="receding")
    ref.reset("move forward slowly, then turn left")
    raw = [ref.step(f) for f in _frames(3)]
    w = np.exp(-0.5 * np.arange(2))
    expected = (raw[2][0] * w[0] + raw[1][1] * w[1]) / w.sum()
    np.testing.assert_allclose(chunks[2][0], expected, atol=1e-5)
    np.testing.assert_allclose(chunks[2][1], raw[2][1], atol=1e-6)


def test_clear_errors(exports, tmp_path):
    src = exports[("policy_head", "mlp")]
    p = Policy.load(src)
    with pytest.raises(InputError, match="reset"):
        p.step(_frames(1)[0])
    with pytest.raises(InputError, match="empty"):
        p.reset("")
    p.reset("go left")
    with pytest.raises(InputError, match="dtype"):
        p.step(np.zeros((20, 20, 3), np.float32))
    with pytest.raises(InputError, match="channels"):
        p.step(np.zeros((20, 20, 1), np.uint8))

    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    with open(broken / "statistics.json", "a") as f:
        f.write(" ")
    with pytest.raises(RuntimeConfigError, match="statistics.json was altered"):
        Policy.load(str(broken))
    os.remove(broken / "tokenizer.json")
    with pytest.raises(RuntimeConfigError, match="tokenizer.json is missing"):
        Policy.load(str(broken))
    shutil.rmtree(broken)
    shutil.copytree(src, broken)
    cfg = json.loads((broken / "config.json").read_text())
    cfg["format_version"] = 99
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RuntimeConfigError, match="format_version 99"):
        Policy.load(str(broken))


@pytest.mark.parametrize("key,value", [("structure", "two_step"), ("discrete_decoding", "beam")])
def test_a_policy_value_this_runtime_does_not_know_is_one_config_error(exports, tmp_path, key, value):
    broken = tmp_path / "newer"
    shutil.copytree(exports[("one_step_discrete", "discrete")], broken)
    cfg = json.loads((broken / "config.json").read_text())
    cfg["policy"][key] = value
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RuntimeConfigError, match=f"config.json: policy.{key} '{value}' is unknown") as err:
        Policy.load(str(broken))
    assert len(str(err.value).splitlines()) == 1


def test_int8_export_loads_close_to_float(tmp_path):
    f32 = write_tiny_export(str(tmp_path / "f32"), seed=3)
    q8 = write_tiny_export(str(tmp_path / "q8"), seed=3, dtype="int8")
    assert os.path.getsize(os.path.join(q8, "model.safetensors")) < 0.6 * os.path.getsize(
        os.path.join(f32, "model.safetensors")
    )
    # The size model used for the README's Jetson table predicts the real files (header aside).
    from runtime_helpers import read_config

    from vla_runtime.sizes import model_sizes

    cfg = read_config(f32)
    sizes = model_sizes(cfg["backbone"], cfg["policy"])["dtypes"]
    for path, dtype in ((f32, "float32"), (q8, "int8")):
        actual = os.path.getsize(os.path.join(path, "model.safetensors"))
        assert 0 <= actual - sizes[dtype]["file_bytes"] < 32 * 1024, (dtype, actual, sizes[dtype])
    a, b = Policy.load(f32), Policy.load(q8)
    assert next(b.model.backbone.parameters()).dtype == torch.float32
    for p in (a, b):
        p.reset("go left")
    frame = _frames(1)[0]
    assert np.abs(a.predict_normalized(frame) - b.predict_normalized(frame)).max() < 0.1


@pytest.mark.parametrize("mode", ["bounds", "bounds_q99", "normal"])
def test_normalise_run_denormalise_round_trip(tmp_path, mode):
    """A model whose readout emits normalise(target) returns the target in robot units from step()."""
    from runtime_helpers import statistics, tiny_backbone_config, tiny_policy_config, tiny_tokenizer

    from vla_runtime.bundle import write_export
    from vla_runtime.policy_io import ActionStatistics
    from vla_runtime.structures import PolicyModel

    stats_d = statistics(3, mode)
    stats = ActionStatistics.from_dict(stats_d)
    lo, hi = (stats.q01, stats.q99) if mode == "bounds_q99" else (stats.min, stats.max)
    target = lo + np.array([[0.2, 0.5, 0.9], [0.7, 0.1, 0.4]]) * (hi - lo)  # [C, A] robot units
    model_units = stats.normalize(target)
    if mode == "normal":
        model_units = np.clip(model_units, -0.99, 0.99)
        target = stats.denormalize(model_units)
    policy_cfg, backbone = tiny_policy_config(), tiny_backbone_config()
    model = PolicyModel.from_config({"backbone": backbone, "policy": policy_cfg})
    state = model.export_state_dict()
    state["head.readout.out.weight"].zero_()
    state["head.readout.out.bias"].copy_(torch.from_numpy(np.arctanh(model_units).reshape(-1)))  # tanh head
    write_export(
        str(tmp_path),
        state_dict=state,
        policy_config=policy_cfg,
        backbone_config=backbone,
        tokenizer_json=tiny_tokenizer().to_str(),
        tokenizer_config={"instruction_length": 8, "pad_id": 1},
        preprocessing=Preprocessing(image_size=(16, 16)).to_dict(),
        statistics=stats_d,
        model_card="x",
    )
    policy = Policy.load(str(tmp_path))
    policy.reset("go left")
    for frame in _frames(2):
        np.testing.assert_allclose(policy.step(frame), target, atol=1e-5)
