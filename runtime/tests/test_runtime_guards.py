"""Nothing non-finite or nonsensical reaches the robot: load-time refusals, the step's last gate, `info`.

The broken exports here keep their sha256 hashes consistent (re-hashed after the edit), as a bad
model exported by a working exporter would: the hash check cannot save the robot, these guards must.
"""

import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from runtime_helpers import write_tiny_export
from safetensors.torch import load_file, save_file

from vla_runtime import InputError, NonFiniteActionError, Policy, RuntimeConfigError
from vla_runtime.bundle import FILES, sha256

RUNTIME = os.path.join(os.path.dirname(__file__), "..")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return write_tiny_export(str(tmp_path_factory.mktemp("guards") / "export"))


def _copy(export, tmp_path, name="broken"):
    out = tmp_path / name
    shutil.copytree(export, out)
    return out


def _rehash(folder):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["files"] = {name: sha256(str(folder / name)) for name in FILES}
    (folder / "config.json").write_text(json.dumps(cfg))


def _edit_weights(folder, fn):
    tensors = load_file(str(folder / "model.safetensors"))
    fn(tensors)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt", "dtype": "float32"})
    _rehash(folder)


def _edit_json(folder, name, fn):
    d = json.loads((folder / name).read_text())
    fn(d)
    (folder / name).write_text(json.dumps(d))
    _rehash(folder)


def _frame(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (20, 24, 3), dtype=np.uint8)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_load_refuses_non_finite_weights_naming_the_tensor(export, tmp_path, value):
    broken = _copy(export, tmp_path)
    name = "head.readout.out.bias"

    def poison(t):
        t[name][1] = value

    _edit_weights(broken, poison)
    with pytest.raises(RuntimeConfigError, match=f"tensor {name} holds 1 non-finite"):
        Policy.load(str(broken))


def test_load_refuses_weights_that_overflow_the_compute_dtype(export, tmp_path):
    """A float32 weight of 1e5 is finite, but inf in float16: checked after the cast."""
    broken = _copy(export, tmp_path)
    name = "backbone.text_model.model.embed_tokens.weight"

    def big(t):
        key = next(k for k in t if k.endswith("embed_tokens.weight"))
        t[key][0, 0] = 1e5

    _edit_weights(broken, big)
    Policy.load(str(broken))  # float32: fine
    with pytest.raises(RuntimeConfigError, match="embed_tokens.weight holds 1 non-finite"):
        Policy.load(str(broken), dtype="float16")
    assert name  # the tensor name is the HF one under the runtime's prefix


@pytest.mark.parametrize(
    "key, dim, value, needle",
    [
        ("mean", 0, float("nan"), "action mean\\[0\\] is nan"),
        ("std", 2, float("inf"), "action std\\[2\\] is inf"),
        ("max", 1, float("nan"), "action max\\[1\\] is nan"),
        ("q99", 0, -1e9, "action q01\\[0\\]=.* is above q99\\[0\\]"),
        ("min", 1, 1e9, "action min\\[1\\]=.* is above max\\[1\\]"),
    ],
)
def test_load_refuses_bad_statistics_naming_key_and_dim(export, tmp_path, key, dim, value, needle):
    broken = _copy(export, tmp_path)

    def edit(d):
        d["action"][key][dim] = value

    _edit_json(broken, "statistics.json", edit)
    with pytest.raises(RuntimeConfigError, match=needle):
        Policy.load(str(broken))


def test_step_never_returns_a_non_finite_action(export):
    """Weights that go bad in memory (or a half-precision overflow mid-network): step raises, returns nothing."""
    for mode in ("receding", "ensemble"):
        policy = Policy.load(export, mode=mode)
        policy.reset("go left")
        good = policy.step(_frame(0))
        assert np.isfinite(good).all()
        history = list(policy._chunks)
        with torch.no_grad():
            dict(policy.model.named_parameters())["head.readout.out.bias"][0] = float("nan")
        with pytest.raises(NonFiniteActionError, match="step 2: the policy produced a non-finite action"):
            policy.step(_frame(1))
        assert [c.tolist() for c in policy._chunks] == [c.tolist() for c in history]  # ensemble not poisoned


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # numpy's, at the cast
def test_an_action_beyond_float32_is_refused_not_returned_as_inf(export, tmp_path):
    """Statistics whose range is finite in float64 but beyond float32: the robot gets float32, so the check runs
    after the cast, which would turn such an action into inf; receding and ensemble alike."""
    wide = _copy(export, tmp_path)

    def edit(d):
        assert d["normalization"] == "bounds", d["normalization"]  # the fixture's: [min, max] sets the scale
        d["action"]["min"][0], d["action"]["max"][0] = -1e300, 1e300

    _edit_json(wide, "statistics.json", edit)
    for mode in ("receding", "ensemble"):
        policy = Policy.load(str(wide), mode=mode)
        policy.reset("go left")
        with pytest.raises(NonFiniteActionError, match="step 1: the policy produced a non-finite action"):
            policy.step(_frame())


def test_unnormalised_dims_are_checked_too(export, tmp_path):
    """A dim the statistics mask out (a gripper) passes through de-normalisation untouched: NaN included."""
    masked = _copy(export, tmp_path)
    _edit_json(masked, "statistics.json", lambda d: d["action"].update(mask=[True, True, False]))
    policy = Policy.load(str(masked))
    policy.reset("go left")
    with torch.no_grad():
        dict(policy.model.named_parameters())["head.readout.out.bias"][:] = float("nan")
    with pytest.raises(NonFiniteActionError):
        policy.step(_frame())


def test_damaged_safetensors_is_one_line(export, tmp_path):
    broken = _copy(export, tmp_path)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(b"\xff\xff" + data[2:200])
    _rehash(broken)
    with pytest.raises(RuntimeConfigError, match="model.safetensors is not a readable safetensors file"):
        Policy.load(str(broken))


@pytest.mark.parametrize(
    "where, key, value, needle",
    [
        ("config.json", "format_version", True, "format_version True is not supported"),
        ("config.json", "format_version", "2", "format_version '2' is not supported"),
        ("config.json", "tokenizer.instruction_length", True, "'instruction_length' must be an integer, got True"),
        ("config.json", "tokenizer.pad_id", 1.5, "'pad_id' must be an integer, got 1.5"),
        ("config.json", "tokenizer.instruction_length", 0, "instruction_length 0 must be >= 1"),
    ],
)
def test_config_values_of_the_wrong_type_are_refused(export, tmp_path, where, key, value, needle):
    broken = _copy(export, tmp_path)
    cfg = json.loads((broken / where).read_text())
    node = cfg
    *parents, leaf = key.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    (broken / where).write_text(json.dumps(cfg))
    with pytest.raises(RuntimeConfigError, match=needle):
        Policy.load(str(broken))


def test_lone_surrogate_instruction_is_an_input_error(export):
    policy = Policy.load(export)
    with pytest.raises(InputError, match="lone surrogate"):
        policy.reset("go \udcff left")  # what argv bytes that are not UTF-8 decode to


def test_long_instruction_truncation_is_said(export, caplog):
    policy = Policy.load(export)
    policy.reset("go left")
    assert policy.instruction_warning is None
    with caplog.at_level(logging.WARNING, logger="vla_runtime"):
        policy.reset("Navigate around the obstacle on the left side and reach the target " * 150)
    assert "longer than the model's 12 tokens" in policy.instruction_warning
    assert "characters are dropped" in caplog.text


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "vla_runtime.cli", *args], capture_output=True, text=True, timeout=120, cwd=RUNTIME
    )


def test_info_checks_what_load_checks(export, tmp_path):
    ok = _cli("info", export)
    assert ok.returncode == 0 and json.loads(ok.stdout)["format_version"] == 2
    broken = _copy(export, tmp_path)
    _edit_json(broken, "statistics.json", lambda d: d["action"]["std"].__setitem__(0, float("nan")))
    bad = _cli("info", str(broken))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == bad.stderr.strip().splitlines()[0]
    assert "action std[0] is nan" in bad.stderr


def test_compile_is_offered_by_serve_and_bench_and_checked(export):
    from vla_runtime.cli import build_parser

    for command in ("serve", "bench"):
        assert build_parser().parse_args([command, export, "--compile", "default"]).compile == "default"
        assert build_parser().parse_args([command, export]).compile is None  # eager unless asked
    bad = _cli("bench", export, "--compile", "fast")
    assert bad.returncode == 2 and "--compile: invalid choice: 'fast'" in bad.stderr and "Traceback" not in bad.stderr
