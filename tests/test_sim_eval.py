"""Closed-loop harness: paired episodes, scores, plots, and the sim-eval command on a stand-in policy."""

import json

import numpy as np
import pytest

from vla_jax.cli import main
from vla_jax.errors import VLAJaxError
from vla_jax.evaluate import closed_loop as ev
from vla_jax.evaluate import plots
from vla_jax.sim.env import KEY


class SideFollower:
    """Reads only the instruction: sidestep toward the named side for 4 steps, then forward, then back."""

    def __init__(self, ignore_instruction=False):
        self.ignore = ignore_instruction
        self.images = []

    def reset(self, instruction):
        self.sign = 1.0 if ("left" in instruction or self.ignore) else -1.0
        self.t = 0

    def step(self, image):
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        self.images.append(image)
        self.t += 1
        lateral = self.sign * KEY if self.t <= 4 else (-self.sign * KEY if 8 <= self.t <= 11 else 0.0)
        return np.array([[KEY, lateral, 0.0]] * 4, np.float32)  # a chunk of 4; only the first is executed


def test_pairs_share_worlds_and_differ_in_side():
    plan = ev.eval_plan(6, seed=1)
    assert len(plan) == 6
    for (p0, s0, seed0), (p1, s1, seed1) in zip(plan[::2], plan[1::2]):
        assert p0 == p1 and seed0 == seed1 and s0.swapped() == s1 and {s0.side, s1.side} == {"left", "right"}
    assert all(seed >= ev.EVAL_SEED_OFFSET for _, _, seed in plan)  # never a collection seed
    with pytest.raises(VLAJaxError, match="even"):
        ev.eval_plan(3, 0)


def test_instruction_sensitivity_separates_listening_from_ignoring(tmp_path):
    listening = ev.evaluate(SideFollower(), 4, seed=2, image_size=32, progress=False, record_episodes=1)
    deaf = ev.evaluate(SideFollower(ignore_instruction=True), 4, seed=2, image_size=32, progress=False)
    assert [r.outcome.side for r in listening] == ["left", "right", "left", "right"]
    assert ev.instruction_sensitivity(listening) == 1.0
    assert [r.outcome.side for r in deaf] == ["left"] * 4
    assert ev.instruction_sensitivity(deaf) == 0.0
    s = ev.summarize(deaf)
    assert s["per_scenario"]["side"]["right"]["side_correct"] == 0.0
    assert s["per_scenario"]["side"]["left"]["side_correct"] == 1.0
    assert 0 < s["overall"]["mean_steps"] <= 18
    assert listening[0].frames is not None and listening[1].frames is None
    assert len(listening[0].frames) == listening[0].outcome.steps + 1
    png = plots.trajectory_plot(listening, tmp_path / "t.png")
    gifs = plots.rollout_gifs(listening, tmp_path / "gifs")
    assert png.stat().st_size > 5000 and len(gifs) == 1 and gifs[0].stat().st_size > 1000
    assert "instruction sensitivity" in ev.format_table(s)


def test_bgr_frames_reach_the_policy_flipped():
    rgb, bgr = SideFollower(), SideFollower()
    plan = ev.eval_plan(2, 0)
    ev.run_episode(rgb, plan[0][1], plan[0][2], image_size=32)
    ev.run_episode(bgr, plan[0][1], plan[0][2], image_size=32, input_channel_order="BGR")
    np.testing.assert_array_equal(rgb.images[0], bgr.images[0][..., ::-1])


def test_policy_with_a_bad_chunk_is_a_clear_error():
    class Bad(SideFollower):
        def step(self, image):
            return np.zeros((4, 7))

    plan = ev.eval_plan(2, 0)
    with pytest.raises(VLAJaxError, match=r"\[C, 2 or 3\]"):
        ev.run_episode(Bad(), plan[0][1], plan[0][2], image_size=32)


def test_sim_eval_command_smoke(tmp_path, monkeypatch, capsys):
    from vla_jax.evaluate import policies

    monkeypatch.setattr(policies, "load_policy", lambda path, **kw: (SideFollower(), "RGB", "export"))
    out = tmp_path / "eval"
    assert (
        main(
            [
                "sim-eval",
                "--policy",
                str(tmp_path),
                "--episodes",
                "2",
                "--image-size",
                "32",
                "--out",
                str(out),
                "--gifs",
                "1",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"]["episodes"] == 2 and summary["instruction_sensitivity"] == 1.0
    assert (out / "trajectories.png").is_file() and len(list((out / "rollouts").glob("*.gif"))) == 1
    assert "overall" in capsys.readouterr().out


def test_sim_eval_rejects_a_folder_that_is_no_policy(tmp_path, capsys):
    assert main(["sim-eval", "--policy", str(tmp_path), "--episodes", "2"]) == 2
    assert "neither an export folder" in capsys.readouterr().err
