"""sim-eval on a tiny real export (torch runtime) and the same params through the JAX workdir adapter."""

import json

import numpy as np
import pytest

pytest.importorskip("vla_runtime")

from vla_jax.cli import main  # noqa: E402
from vla_jax.evaluate import closed_loop as ev  # noqa: E402
from vla_jax.train.model import vla_config  # noqa: E402

STATS = {
    "mobile_episodes": {
        "normalization": "bounds",
        "action": {
            "mean": [0.8, 0.0],
            "std": [0.5, 0.7],
            "min": [-1.15, -1.15],
            "max": [1.15, 1.15],
            "q01": [-1.15, -1.15],
            "q99": [1.15, 1.15],
            "mask": [True, True],
        },
    }
}


@pytest.fixture(scope="module")
def tiny(tiny_policy):
    from vla_jax.export.export import export_policy

    root, config, params = tiny_policy
    export_policy(vla_config(config), params, STATS, str(root / "tok"), str(root / "export"), instruction_length=16)
    return root, config, params


def test_sim_eval_two_episodes_with_a_tiny_export(tiny, capsys):
    root, _, _ = tiny
    out = root / "eval"
    assert (
        main(
            [
                "sim-eval",
                "--policy",
                str(root / "export"),
                "--episodes",
                "2",
                "--image-size",
                "32",
                "--out",
                str(out),
                "--gifs",
                "2",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policy"]["kind"] == "export" and summary["overall"]["episodes"] == 2
    assert all(1 <= e["steps"] <= 18 for e in summary["episodes"])
    assert len(list((out / "rollouts").glob("*.gif"))) == 2
    assert "instruction sensitivity" in capsys.readouterr().out


def test_jax_adapter_drives_like_the_export(tiny):
    from vla_jax.evaluate.jax_policy import JaxWorkdirPolicy
    from vla_runtime import Policy

    root, config, params = tiny
    torch_policy = Policy.load(str(root / "export"))
    jax_policy = JaxWorkdirPolicy(config, params, STATS)
    plan = ev.eval_plan(2, 3)
    a = ev.run_episode(torch_policy, plan[1][1], plan[1][2], image_size=32)
    b = ev.run_episode(jax_policy, plan[1][1], plan[1][2], image_size=32)
    assert a.actions.shape == b.actions.shape and a.actions.shape[1] == 2
    np.testing.assert_allclose(a.actions, b.actions, atol=1e-4)
    assert np.abs(a.actions).max() <= 1.15 + 1e-6  # de-normalised into the robot's key-press range
