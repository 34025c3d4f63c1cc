"""Meta-World end to end, as small as it gets: collect 2 tasks x 2 episodes -> train -> export -> sim-eval.

Training uses the registry's `metaworld` entry, which pads the 4-D actions to
`eef7` (dims 3-5 zero, gripper as openness) until declared action spaces land;
sim-eval maps the 7-D output back to Meta-World's [dx, dy, dz, gripper].
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
    assert stats["num_trajectories"] == 4 and stats["action"]["mask"] == [True] * 6 + [False]
    assert main(["export", "--workdir", str(tmp_path / "workdir"), "--out", str(tmp_path / "export")]) == 0
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
