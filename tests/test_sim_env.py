"""Simulator: determinism, side-independence of worlds, success rules on hand-made paths, expert success rate."""

from pathlib import Path

import numpy as np
import pytest

from vla_jax.errors import VLAJaxError
from vla_jax.sim import success
from vla_jax.sim.env import KEY, NavEnv
from vla_jax.sim.expert import ScriptedExpert
from vla_jax.sim.scenarios import Layout, Obstacle, Scenario, all_scenarios, sample_layout


def _rollout(layout, actions, image_size=32):
    with NavEnv(layout, image_size=image_size) as env:
        frames = [env.render()]
        for a in actions:
            if env.done:
                break
            img, _ = env.step(a)
            frames.append(img)
        return np.stack(frames), np.asarray(env.path)


def test_same_seed_same_world_and_frames():
    sc = Scenario("2box", "vert", "left", "variant", "far")
    actions = [[0, 0, 0], [KEY, KEY, 0], [KEY, 0, 0.5], [KEY, -KEY, 0]]
    f1, p1 = _rollout(sample_layout(sc, 5), actions)
    f2, p2 = _rollout(sample_layout(sc, 5), actions)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(p1, p2)
    f3, _ = _rollout(sample_layout(sc, 6), actions)
    assert np.abs(f1.astype(int) - f3).mean() > 1.0  # another seed is another world
    assert f1.shape == (5, 32, 32, 3) and f1.dtype == np.uint8
    assert np.abs(f1[0].astype(int) - f1[2]).mean() > 1.0  # the camera moves with the base


def test_world_ignores_the_instructed_side():
    left = sample_layout(Scenario("1box", "hori", "left", "core", "close"), 3)
    right = sample_layout(Scenario("1box", "hori", "right", "core", "close"), 3)
    assert left == right


def test_scenario_tokens_shape_the_world():
    for seed in range(3):
        hori = sample_layout(Scenario("1box", "hori"), seed).obstacles[0]
        vert = sample_layout(Scenario("1box", "vert"), seed).obstacles[0]
        assert hori.half_y > hori.half_x and vert.half_x > vert.half_y
        two = sample_layout(Scenario("2box", "vert"), seed).obstacles
        assert len(two) == 2 and two[1].x > two[0].x
        close = sample_layout(Scenario(distance="close"), seed).target_xy[0]
        far = sample_layout(Scenario(distance="far"), seed).target_xy[0]
        assert far - close > 0.5
    with pytest.raises(VLAJaxError, match="side"):
        Scenario(side="up")
    assert Scenario.from_tokens("episode_20250101_101010_2box_vert_right_variant_far.h5") == Scenario(
        "2box", "vert", "right", "variant", "far"
    )


def test_key_press_moves_0p184_m_and_body_frame_rotation():
    layout = sample_layout(Scenario(), 0)
    with NavEnv(layout, render=False) as env:
        env.step([KEY, 0.0])
        np.testing.assert_allclose(env.pose, [0.184, 0.0, 0.0], atol=1e-9)
        env.step([0.0, KEY])  # +linear_y is the robot's left (+y world)
        np.testing.assert_allclose(env.pose, [0.184, 0.184, 0.0], atol=1e-9)
        env.step([0.0, 0.0, KEY])
        assert env.pose[2] == pytest.approx(0.23)
        env.step([5.0, 0.0, 0.0])  # saturates at one key press
        assert np.hypot(*(env.pose[:2] - [0.184, 0.184])) == pytest.approx(0.184, rel=0.02)
        with pytest.raises(VLAJaxError, match="finite"):
            env.step([np.nan, 0.0])


# A hand-made world: one box 0.2 x 0.6 m at x=1, basket at x=2.
_BOX = Obstacle("box", 1.0, 0.0, 0.1, 0.3, 0.3, (0.4, 0.3, 0.1, 1.0))
_WORLD = Layout(Scenario(), 0, (2.0, 0.0), 0.15, (0.5, 0.5, 0.5, 1), (_BOX,), (0.7, 0.7, 0.7, 1), (0, 0, -1), 0.7)


def _path(*waypoints, n=50):
    pts = [np.linspace(a, b, n, endpoint=False) for a, b in zip(waypoints[:-1], waypoints[1:])]
    return np.concatenate(pts + [np.asarray(waypoints[-1:], float)])


def test_success_rules_on_hand_made_paths():
    around_left = _path((0, 0), (0.6, 0.6), (1.4, 0.6), (1.8, 0.0))
    out = success.judge(around_left, _WORLD, "left", steps=12)
    assert (out.success, out.reached, out.collided, out.side) == (True, True, False, "left")
    wrong_side = success.judge(around_left, _WORLD, "right", steps=12)
    assert not wrong_side.success and wrong_side.reached and not wrong_side.side_correct

    around_right = _path((0, 0), (0.6, -0.6), (1.4, -0.6), (1.8, 0.0))
    assert success.judge(around_right, _WORLD, "right", steps=12).success

    straight = _path((0, 0), (1.8, 0.0))  # drives through the box
    out = success.judge(straight, _WORLD, "left", steps=10)
    assert out.collided and not out.reached and not out.success
    assert success.first_collision(straight, _WORLD) == pytest.approx(np.searchsorted(straight[:, 0], 0.73), abs=1)

    grazing = _path((0, 0), (0.6, 0.45), (1.4, 0.45), (1.8, 0.0))  # 0.45 - 0.3 < robot radius 0.17
    assert success.judge(grazing, _WORLD, "left", steps=12).collided

    short = _path((0, 0), (0.6, 0.6), (1.3, 0.6))  # passed, never arrived
    out = success.judge(short, _WORLD, "left", steps=18)
    assert out.side == "left" and not out.reached and not out.success

    never_passed = _path((0, 0), (0.5, 0.5))
    assert success.passing_side(never_passed, _WORLD) is None


def test_env_stops_at_collision_and_arrival():
    with NavEnv(_WORLD, render=False) as env:
        while not env.done:
            env.step([KEY, 0.0])
        assert env.collided and not env.reached
        assert success.clearance(np.asarray(env.path)[-2:-1], _WORLD)[0] >= 0  # stopped at the contact
        assert env.outcome("left").collided


def test_scripted_expert_solves_seeded_scenarios():
    results, lengths = [], []
    for seed in range(2):
        for sc in all_scenarios():
            layout = sample_layout(sc, 1000 + seed)
            expert = ScriptedExpert(layout, sc.side)
            with NavEnv(layout, render=False) as env:
                env.step([0, 0, 0])
                while not env.done:
                    action = expert.act(env.pose)
                    assert set(np.abs(action[:2]).tolist()) <= {0.0, np.float32(KEY).item()} and action[2] == 0
                    env.step(action)
                results.append(env.outcome(sc.side).success)
                lengths.append(env.steps)
    assert np.mean(results) >= 0.95
    assert max(lengths) <= 17  # leaves the final stop frame inside the users' 18 frames


def test_no_gl_library_in_the_calling_process():
    # Mesa's llvmpipe and TensorFlow segfault in one process (exit 139, both carry LLVM), so frames
    # come from a render worker and the caller never maps a GL/LLVM library.
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs /proc (Linux)")
    layout = sample_layout(Scenario(), 0)
    with NavEnv(layout, image_size=32) as env:
        before = env.render()
    loaded = maps.read_text()
    assert before.mean() > 10 and not any(lib in loaded for lib in ("libEGL", "libOSMesa", "libLLVM", "libGLX"))
    with NavEnv(layout, image_size=32) as env:
        np.testing.assert_array_equal(env.render(), before)  # a reused GL context renders the same frame


def test_unusable_gl_backend_is_one_clear_error(monkeypatch):
    from vla_jax.sim.render_worker import RenderClient

    monkeypatch.setenv("MUJOCO_GL", "no-such-backend")
    client = RenderClient()  # a fresh worker that inherits the broken setting
    try:
        with pytest.raises(VLAJaxError, match="MUJOCO_GL='no-such-backend'.*apt-get install"):
            client.load("<mujoco/>", 32)
    finally:
        client.close()
