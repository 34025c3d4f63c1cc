"""`vla-jax export` refuses what would hurt the robot and never leaves a half-written folder.

Non-finite weights or statistics are refused naming the tensor or key (nothing written); a weight
that only overflows at the export dtype likewise; `--out` that is a file is one line; a failed
export leaves the previous export whole; a healthy export prints no warnings.
"""

import json
import os

import numpy as np
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
from test_export import STATS, _write_workdir, case_config, random_params  # noqa: E402

from vla_jax import cli  # noqa: E402
from vla_jax.errors import VLAJaxError  # noqa: E402
from vla_jax.export.export import export_policy  # noqa: E402

CFG = case_config("policy_head", "lstm")


@pytest.fixture(scope="module")
def params():
    return random_params(CFG)


def _poison(params, value, where=("head",)):
    params = jax.tree.map(np.array, params)
    node = params
    for key in where:
        node = node[key]
    first = next(k for k in sorted(node) if isinstance(node[k], (dict, np.ndarray)))
    while isinstance(node[first], dict):
        node = node[first]
        first = sorted(node)[0]
    node[first].reshape(-1)[0] = value
    return params


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_params_are_refused_naming_the_tensor(params, tmp_path, value):
    out = tmp_path / "export"
    with pytest.raises(VLAJaxError) as info:
        export_policy(CFG, _poison(params, value), STATS, None, str(out))
    assert "export: param head/" in str(info.value) and "holds 1 non-finite" in str(info.value)
    assert not out.exists()


@pytest.mark.parametrize(
    "key, value, needle",
    [
        ("mean", np.nan, "action mean[1] is nan"),
        ("q99", np.inf, "action q99[1] is inf"),
        ("min", 5.0, "action min[1]=5 is above max[1]"),
    ],
)
def test_bad_statistics_are_refused_naming_key_and_dim(params, tmp_path, key, value, needle):
    stats = json.loads(json.dumps(STATS))
    stats["mobile"]["action"][key][1] = value
    out = tmp_path / "export"
    with pytest.raises(VLAJaxError) as info:
        export_policy(CFG, params, stats, None, str(out))
    assert needle in str(info.value) and "nothing was written" in str(info.value)
    assert not out.exists()


def test_a_weight_that_overflows_the_export_dtype_is_refused(params, tmp_path):
    big = _poison(params, 1e6)
    export_policy(CFG, big, STATS, None, str(tmp_path / "f32"), "float32")  # finite in float32
    with pytest.raises(VLAJaxError, match="export at float16: tensor head.* holds 1 non-finite"):
        export_policy(CFG, big, STATS, None, str(tmp_path / "f16"), "float16")
    assert not (tmp_path / "f16").exists()
    assert [p for p in os.listdir(tmp_path) if "staging" in p] == []


def test_out_that_is_a_file_is_one_line(params, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(VLAJaxError, match="--out .*file is a file, not a folder"):
        export_policy(CFG, params, STATS, None, str(tmp_path / "file"))


def test_a_failed_export_leaves_the_previous_one_whole(params, tmp_path, monkeypatch):
    from vla_jax.export import export as export_module
    from vla_runtime import Policy

    out = str(tmp_path / "export")
    export_policy(CFG, params, STATS, None, out)
    before = json.loads(open(os.path.join(out, "config.json")).read())["files"]
    real = export_module.write_export

    def dies_half_way(out_dir, **kw):
        real(out_dir, **kw)
        os.remove(os.path.join(out_dir, "statistics.json"))
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(export_module, "write_export", dies_half_way)
    with pytest.raises(OSError, match="simulated"):
        export_policy(CFG, random_params(CFG, seed=9), STATS, None, out)
    assert json.loads(open(os.path.join(out, "config.json")).read())["files"] == before
    Policy.load(out)  # whole: every hash still matches
    assert sorted(os.listdir(tmp_path)) == ["export"]


def test_healthy_workdir_export_prints_no_warnings(params, tmp_path, capfd):
    workdir, out = str(tmp_path / "w"), str(tmp_path / "export")
    _write_workdir(workdir, CFG, params, {"synthetic": STATS["mobile"]})
    capfd.readouterr()
    assert cli.main(["export", "--workdir", workdir, "--out", out]) == 0
    err = capfd.readouterr().err
    assert "WARNING" not in err and "could not be restored" not in err, err
    assert os.stat(out).st_mode & 0o055  # the staged folder's 0700 did not survive the swap


def test_non_finite_checkpoint_from_an_older_trainer_is_one_line(params, tmp_path, capfd, monkeypatch):
    from vla_jax.train import checkpoint

    monkeypatch.setattr(checkpoint, "first_nonfinite", lambda tree: None)  # a trainer without the guard
    workdir = str(tmp_path / "w")
    _write_workdir(workdir, CFG, _poison(params, np.nan), {"synthetic": STATS["mobile"]})
    monkeypatch.undo()
    capfd.readouterr()
    assert cli.main(["export", "--workdir", workdir, "--out", str(tmp_path / "export")]) == 2
    err = capfd.readouterr().err
    assert "vla-jax export: error: export: param head/" in err and "Traceback" not in err
    assert not (tmp_path / "export").exists()
