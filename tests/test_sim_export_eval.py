"""sim-eval on a tiny real export (torch runtime) and the same params through the JAX workdir adapter."""

import dataclasses
import json

import ml_collections
import numpy as np
import pytest

pytest.importorskip("vla_runtime")

from vla_jax.cli import main  # noqa: E402
from vla_jax.evaluate import closed_loop as ev  # noqa: E402
from vla_jax.models.kosmos2 import Kosmos2Config  # noqa: E402
from vla_jax.train.model import backbone_config_dict, vla_config  # noqa: E402

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
def tiny(tmp_path_factory):
    from data_pipelines.tokenize import train_tokenizer
    from vla_jax.export.export import export_policy
    from vla_jax.vla import init_policy

    root = tmp_path_factory.mktemp("tiny_policy")
    train_tokenizer(
        [ev.Scenario().instruction, ev.Scenario().swapped().instruction] * 2, str(root / "tok"), vocab_size=300
    )
    config = ml_collections.ConfigDict(
        {
            "model": {
                "backbone": backbone_config_dict(
                    Kosmos2Config.tiny(
                        text=dataclasses.replace(
                            Kosmos2Config.tiny().text, vocab_size=300, layers=1, max_position_embeddings=64
                        )
                    )
                ),
                "structure": "policy_head",
                "head": "lstm",
                "window_size": 2,
                "action_chunk": 2,
                "action_dim": 2,
                "has_gripper": False,
                "head_hidden_size": 16,
                "head_layers": 1,
            },
            "data": {"tokenizer": str(root / "tok"), "instruction_length": 16},
        }
    )
    vcfg = vla_config(config)
    params = init_policy(vcfg, 0, image_size=32, instruction_length=16)
    export_policy(vcfg, params, STATS, str(root / "tok"), str(root / "export"), instruction_length=16)
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
