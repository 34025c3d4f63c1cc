"""Meta-World end to end, as small as it gets: collect 2 tasks x 2 episodes -> train -> export -> sim-eval.

Training uses the registry's `metaworld` entry: Meta-World's own 4-D [dx, dy, dz, gripper]
declared as 3 continuous dims + a gripper in `[-1 open, +1 close]`; the export carries the
convention, so `vla_runtime.Policy` (and the JAX reference policy) return Meta-World's actions.
"""

import importlib.util
import json

import pytest
import tiny_arm_config

from vla_jax.cli import main

# Never import metaworld here: it imports MuJoCo's GL libraries into a process that runs TensorFlow.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("metaworld") is None or importlib.util.find_spec("vla_runtime") is None,
    reason="needs metaworld and vla_runtime",
)

SIZE = tiny_arm_config.SIZE
TASKS = "reach-v3,drawer-close-v3"


def test_collect_train_export_eval(tmp_path, capsys):
    assert (
        main(
            [
                "sim-collect",
                "--env",
                "metaworld",
                "--tasks",
                TASKS,
                "--episodes-per-task",
                "2",
                "--image-size",
                str(SIZE),
                "--out",
                str(tmp_path / "rlds"),
            ]
        )
        == 0
    )
    tiny_arm_config.train(tmp_path)
    stats = json.loads((tmp_path / "workdir" / "statistics.json").read_text())["metaworld"]
    assert stats["num_trajectories"] == 4 and stats["action"]["mask"] == [True] * 3 + [False]
    assert stats["gripper"]["convention"] == "[-1 open, 1 closed]"
    assert main(["export", "--workdir", str(tmp_path / "workdir"), "--out", str(tmp_path / "export")]) == 0
    check_policy_returns_metaworld_gripper(tmp_path)
    out = tmp_path / "eval"
    assert (
        main(
            [
                "sim-eval",
                "--env",
                "metaworld",
                "--policy",
                str(tmp_path / "export"),
                "--tasks",
                TASKS,
                "--episodes-per-task",
                "1",
                "--max-steps",
                "15",
                "--image-size",
                str(SIZE),
                "--gifs",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policy"]["kind"] == "export"
    assert set(summary["per_task"]) == set(TASKS.split(",")) and list(summary["per_difficulty"]) == ["easy"]
    assert all(1 <= e["steps"] <= 15 for e in summary["episodes"]) and len(summary["episodes"]) == 2
    assert summary["published"]["rows"]["SmolVLA"]["average"] == 57.3
    assert (out / "success_by_difficulty.png").stat().st_size > 0
    assert len(list((out / "rollouts").glob("*.gif"))) == 1
    printed = capsys.readouterr().out
    assert "theirs: SmolVLA (0.45B)" in printed and "export (this run)" in printed


def check_policy_returns_metaworld_gripper(tmp_path):
    """The export and the JAX reference policy return the gripper as Meta-World's effort (1 - 2 * opening)."""
    import numpy as np

    from vla_jax.evaluate.jax_policy import JaxWorkdirPolicy
    from vla_runtime import Policy

    exported = json.loads((tmp_path / "export" / "statistics.json").read_text())
    assert exported["gripper"] == {"convention": "[-1 open, 1 closed]", "canonical": "[0 closed, 1 open]"}
    frame = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), np.uint8)
    runtime = Policy.load(str(tmp_path / "export"))
    reference = JaxWorkdirPolicy.load(tmp_path / "workdir", fast_compile=True)
    for policy in (runtime, reference):
        policy.reset("reach the goal")
    opening = reference.predict_normalized(frame)[:, 3]
    reference.reset("reach the goal")
    ours, theirs = runtime.step(frame), reference.step(frame)
    assert ours.shape == (2, 4) and np.all(np.abs(ours[:, 3]) <= 1)
    np.testing.assert_allclose(ours[:, 3], 1.0 - 2.0 * opening, atol=1e-4)  # not the opening itself
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
