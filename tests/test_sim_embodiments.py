"""Cross-embodiment robots (vla_jax/sim/embodiments.py): the target is unchanged, the others differ, and
the study's pre-trained checkpoint fits the post-training model except for the re-initialised head."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from vla_jax.errors import VLAJaxError
from vla_jax.sim import collect, embodiments
from vla_jax.sim.env import KEY, NavEnv
from vla_jax.sim.expert import DiffDriveExpert
from vla_jax.sim.scenarios import Scenario, all_scenarios, sample_layout
from vla_jax.sim.scene import build_mjcf

REPO = Path(__file__).resolve().parents[1]


def test_target_is_the_users_robot_and_world():
    target = embodiments.get(embodiments.TARGET)
    layout = sample_layout(Scenario(), 3)
    assert target.world(layout) is layout
    # The users' camera exactly as before the table existed: 0.12 m ahead, 0.32 m up, 15 deg down, fovy 80.
    assert '<camera name="front" pos="0.12 0 0.32" xyaxes="0 -1 0 0.259 0 0.966" fovy="80"/>' in build_mjcf(layout)
    assert target.action_dim == 2 and target.instruction("left") == Scenario().instruction


@pytest.mark.parametrize("name", sorted(set(embodiments.EMBODIMENTS) - {embodiments.TARGET}))
def test_other_robots_differ_in_camera_world_and_wording(name):
    robot, target = embodiments.get(name), embodiments.get(embodiments.TARGET)
    layout = sample_layout(Scenario("2box", "hori", "left", "variant", "far"), 4)
    world = robot.world(layout)
    assert robot.camera_xml() != target.camera_xml()
    assert [o.rgba for o in world.obstacles] != [o.rgba for o in layout.obstacles]
    assert world.target_rgba != layout.target_rgba
    assert robot.instruction("left") != target.instruction("left") and "left" in robot.instruction("left")
    assert name in embodiments.DIFFERENCES


def test_unknown_embodiment_is_one_line():
    with pytest.raises(VLAJaxError, match="--embodiment 'wheelchair' is unknown"):
        embodiments.get("wheelchair")


def test_differential_base_cannot_strafe():
    layout = sample_layout(Scenario(), 0)
    diff = NavEnv(layout, render=False, embodiment=embodiments.get("diff_drive"))
    omni = NavEnv(layout, render=False)
    diff.step([0.0, KEY, 0.0])
    omni.step([0.0, KEY, 0.0])
    np.testing.assert_allclose(diff.pose, [0.0, 0.0, 0.0])
    assert omni.pose[1] > 0.15
    diff.step([0.0, 0.0, KEY])
    assert diff.pose[2] > 0.2  # it turns instead


def test_diff_drive_expert_passes_on_the_instructed_side_without_strafing():
    robot = embodiments.get("diff_drive")
    scenarios = all_scenarios()[::6]
    wins = 0
    for i, scenario in enumerate(scenarios):
        layout = robot.world(sample_layout(scenario, 50 + i))
        expert = DiffDriveExpert(layout, scenario.side)
        env = NavEnv(layout, render=False, max_steps=robot.max_steps, embodiment=robot)
        while not env.done:
            action = expert.act(env.pose)
            assert action[1] == 0.0
            env.step(action)
        wins += env.outcome(scenario.side).success
    assert wins >= len(scenarios) - 1


def test_other_robots_store_their_own_instruction_in_every_file(tmp_path):
    paths = collect.collect(tmp_path, 2, image_size=16, seed=3, instruction_fraction=0.0, embodiment="mast_narrow")
    for path in paths:
        with h5py.File(path) as f:
            text = np.asarray(f["language_instruction"])[0].decode()
        assert text.startswith("Pass the barrel on the ")


def test_pretrained_checkpoint_fits_the_post_training_model_but_the_head():
    """configs/study_data.py:pretrain (4-D) -> configs/demo.py (2-D): only `^head/` leaves differ (re-initialised)."""
    import jax
    from flax import traverse_util

    from vla_jax.train.config import load_config_file
    from vla_jax.train.model import build_model, example_batch

    def shapes(spec):
        config = load_config_file(spec)
        bundle = build_model(config)
        tree = jax.eval_shape(lambda r: bundle.module.init(r, example_batch(config))["params"], jax.random.key(0))
        flat: dict = traverse_util.flatten_dict(tree)
        return {"/".join(map(str, k)): v.shape for k, v in flat.items()}

    pre, post = shapes(f"{REPO}/configs/study_data.py:pretrain"), shapes(f"{REPO}/configs/demo.py")
    assert pre.keys() == post.keys()
    differ = sorted(k for k in pre if pre[k] != post[k])
    assert differ and all(k.startswith("head/") for k in differ), differ
    assert load_config_file(f"{REPO}/configs/demo.py").init_reinit == r"^head/"


def test_cross_embodiment_registry_declares_the_set_and_its_mixtures():
    import tensorflow as tf

    from data_pipelines import registry

    registry.load_user_registry(str(REPO / "configs" / "xemb_registry.py"))
    pre, co = registry.get_mixture("xemb_pretrain"), dict(registry.get_mixture("xemb_cotrain"))
    assert "mobile_episodes" not in dict(pre)  # the target never is in the pre-training set
    assert co["mobile_episodes"] == sum(w for n, w in co.items() if n != "mobile_episodes")  # half of each batch
    assert {n: registry.get_spec(n).action_dim for n, _ in pre} == {
        "xemb_low_wide": 2,
        "xemb_mast_narrow": 2,
        "xemb_diff_drive": 2,
        "metaworld": 4,
    }
    steps = {"action": tf.constant([[1.15, 0.0, -1.15], [0.0, 0.0, 1.15]])}
    out = registry.get_spec("xemb_diff_drive").standardize(steps)["action"].numpy()
    np.testing.assert_allclose(out, [[1.15, -1.15], [0.0, 1.15]])  # [linear_x, angular_z]: no constant linear_y


@pytest.mark.parametrize("arg", [None, "gpu"])
def test_cotrained_cells_train_for_pre_training_plus_post_training_steps(arg):
    """The co-trained run is its strategy's pre-training and post-training in one: with the target half of every
    batch, `cell_steps` alone shows it half the target samples of a post-training cell (the 0% co-trained cells)."""
    from vla_jax.study.spec import load_study
    from vla_jax.train.config import load_config_file

    spec = f"{REPO}/configs/study_data.py"
    study = load_study(f"{spec}:{arg}" if arg else spec)
    steps = {c.name: int(str(c.overrides["num_steps"])) for c in study.cells}
    for n in (5, 10, 24, 72):
        assert steps[f"cotrained_N{n}"] > steps[f"pretrained_N{n}"], steps
        assert steps.get(f"scratch_matched_N{n}", steps[f"cotrained_N{n}"]) == steps[f"cotrained_N{n}"], steps
    assert "scratch_matched_N72" in steps  # the equal-compute control exists where the grid has it
    if arg is None:  # the config's own default is the CPU size's
        assert load_config_file(f"{spec}:cotrain").num_steps == steps["cotrained_N72"]
