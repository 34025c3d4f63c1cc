"""The users' offline metrics on hand-made arrays."""

import numpy as np
import pytest

from vla_jax.errors import VLAJaxError
from vla_jax.evaluate.offline_metrics import format_metrics, offline_metrics


def test_metrics_on_hand_made_arrays():
    gt = np.array([[1.15, 0.0], [1.15, 1.15], [0.0, -1.15], [1.15, 0.0]], np.float32)
    pred = np.array([[0.95, 0.05], [1.0, 0.7], [0.15, -1.0], [1.0, -0.3]], np.float32)
    m = offline_metrics(pred, gt)  # clamped to [-1, 1]: gt becomes {-1, 0, 1}
    err = np.array([[0.05, 0.05], [0.0, 0.3], [0.15, 0.0], [0.0, 0.3]])
    assert m["frames"] == 4
    assert m["mae"] == pytest.approx(err.mean())
    assert m["rmse"] == pytest.approx(np.sqrt((err**2).mean()))
    assert m["per_dim"]["dim0"]["mae"] == pytest.approx(0.05)
    assert m["per_dim"]["dim0"]["success@0.1"] == pytest.approx(0.75)
    assert m["per_dim"]["dim1"]["success@0.1"] == pytest.approx(0.5)
    assert m["success@0.1"] == pytest.approx(0.25)  # only frame 0 has every dim within 0.1
    assert m["success@0.2"] == pytest.approx(0.5)
    # signs with dead band 0.1: pred frame 2 dim0 0.15 -> +1 vs 0; frame 3 dim1 -0.3 -> -1 vs 0
    assert m["per_dim"]["dim0"]["direction_match"] == pytest.approx(0.75)
    assert m["per_dim"]["dim1"]["direction_match"] == pytest.approx(0.75)
    assert m["direction_match"] == pytest.approx(0.5)
    assert "all dims" in format_metrics(m)


def test_mask_no_clamp_and_errors():
    gt = np.zeros((2, 3, 2))
    pred = np.ones((2, 3, 2)) * 2.0
    mask = np.array([[True, False, False], [False, False, False]])
    m = offline_metrics(pred, gt, mask, clamp=None)
    assert m["frames"] == 1 and m["mae"] == pytest.approx(2.0)
    assert offline_metrics(pred, gt)["mae"] == pytest.approx(1.0)
    with pytest.raises(VLAJaxError, match="must match"):
        offline_metrics(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(VLAJaxError, match="no frames"):
        offline_metrics(pred, gt, np.zeros((2, 3), bool))


def test_eval_offline_needs_a_workdir(tmp_path, capsys):
    from vla_jax.cli import main

    assert main(["eval-offline", "--workdir", str(tmp_path), "--data", str(tmp_path)]) == 2
    assert "not a vla-jax training workdir" in capsys.readouterr().err
