"""Meta-World on the published protocol: task sets, env set-up, camera, seeds, the eval loop, collect -> RLDS."""

import importlib.util
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from vla_jax.errors import VLAJaxError
from vla_jax.evaluate.metaworld import run_episode, summarize, to_metaworld_action
from vla_jax.sim.metaworld import tasks as mt

# Never import metaworld here: it imports MuJoCo's GL libraries into a process that runs TensorFlow.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("metaworld") is None, reason="needs metaworld")
GL_LIBRARIES = ("libEGL", "libOSMesa", "libLLVM", "libGLX")

SIZE = 32


def test_difficulty_groups_partition_mt50_as_published():
    sizes = {g: len(ts) for g, ts in mt.DIFFICULTY_GROUPS.items()}
    assert sizes == {"easy": 28, "medium": 11, "hard": 6, "very_hard": 5}
    grouped = [t for ts in mt.DIFFICULTY_GROUPS.values() for t in ts]
    assert sorted(grouped) == sorted(mt.mt50()) and len(set(grouped)) == 50
    assert sorted(mt.INSTRUCTIONS) == sorted(mt.mt50())
    assert len(mt.mt10()) == 10 and set(mt.mt10()) <= set(mt.mt50())
    assert mt.resolve_tasks("hard,reach-v3") == [*mt.DIFFICULTY_GROUPS["hard"], "reach-v3"]
    with pytest.raises(VLAJaxError, match="unknown task"):
        mt.resolve_tasks("reach-v2")


def test_collection_and_evaluation_seeds_are_disjoint():
    collect = {mt.episode_seed("collect", s, t, k) for s in (0, 199) for t in mt.mt50() for k in (0, 99_999)}
    evaluate = {mt.episode_seed("eval", s, t, k) for s in (0, 199) for t in mt.mt50() for k in (0, 99_999)}
    assert not collect & evaluate and max(collect | evaluate) < 2**32
    assert max(collect) < min(evaluate)
    assert len(collect) == 2 * 50 * 2  # no two (seed, task, k) share a seed


def _in_child(script: str) -> str:
    """Run `script` in a fresh TF-free interpreter: MuJoCo's GL libraries must stay out of the test process
    (tests/test_sim_env.py checks none is mapped), as they would crash next to TensorFlow."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_env_set_up_equals_lerobots_mt1_construction():
    """Our goal-observable construction gives the observations of LeRobot's MT1(task, seed=42) + set_task."""
    out = _in_child("""
        import numpy as np
        from vla_jax.sim.metaworld.env import MT1_SEED, make_metaworld_env
        ours = make_metaworld_env("push-v3")  # first: it picks the GL platform before mujoco is imported
        import metaworld
        bench = metaworld.MT1("push-v3", seed=MT1_SEED)
        theirs = bench.train_classes["push-v3"]()
        theirs.set_task(bench.train_tasks[0])
        theirs._freeze_rand_vec, theirs.seeded_rand_vec = False, True
        goals = []
        for seed in (3, 4):
            for env in (ours, theirs):
                env.seed(seed)
            o1, o2 = ours.reset()[0], theirs.reset()[0]
            np.testing.assert_array_equal(o1, o2)
            goals.append(o1[-3:])
            a = np.array([0.3, -0.2, 0.1, 1.0])
            np.testing.assert_array_equal(ours.step(a)[0], theirs.step(a)[0])
        assert not np.allclose(goals[0], goals[1])  # goals are randomised per episode
        print("equal", ours.max_path_length)
    """)
    assert out.split()[-2:] == ["equal", "500"]


def test_task_lists_are_metaworlds():
    out = _in_child("""
        from vla_jax.sim.scene import import_mujoco
        import_mujoco()
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS, MT10_V3
        print(",".join(MT10_V3), ",".join(ALL_V3_ENVIRONMENTS))
    """)
    mt10, mt50 = out.split()[-2:]
    assert mt10.split(",") == mt.mt10() and mt50.split(",") == mt.mt50()


def test_corner2_frames_are_lerobots_image_without_shadows():
    """In a TF-free child: with shadows on, our renderer reproduces LeRobot's flipped env.render() exactly."""
    out = _in_child(f"""
        import numpy as np
        from vla_jax.sim.metaworld.env import MetaWorldTaskEnv, CORNER2_POS
        env = MetaWorldTaskEnv("reach-v3", {SIZE})  # first: it picks the GL platform before mujoco is imported
        import mujoco, metaworld
        env.reset(7)
        fast = env.renderer.render(env.env.data)
        flags = env.renderer.renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 1
        full = env.renderer.render(env.env.data)
        bench = metaworld.MT1("reach-v3", seed=42)
        ref = bench.train_classes["reach-v3"](render_mode="rgb_array", camera_name="corner2", width={SIZE},
                                              height={SIZE})
        ref.set_task(bench.train_tasks[0]); ref.model.cam_pos[2] = CORNER2_POS
        ref._freeze_rand_vec, ref.seeded_rand_vec = False, True
        ref.seed(7); ref.reset()
        lerobot = np.flip(ref.render(), (0, 1))
        print(int(np.abs(full.astype(int) - lerobot).max()), float(np.abs(fast.astype(int) - lerobot).mean()),
              float(np.abs(full[::-1, ::-1].astype(int) - lerobot).mean()))
    """)
    same_max, shadow_mean, unflipped_mean = map(float, out.split()[-3:])
    assert same_max == 0  # same camera pose, orientation and scene
    assert 0 < shadow_mean < 20  # only shadows and reflections differ
    assert unflipped_mean > 30  # the 180-degree turn matters


class Replay:
    """A policy that ignores the frames and returns recorded actions (a test double for vla_runtime.Policy)."""

    def __init__(self, actions):
        self.actions, self.t, self.instruction = np.asarray(actions), 0, None

    def reset(self, instruction):
        self.instruction, self.t = instruction, 0

    def step(self, frame):
        assert frame.dtype == np.uint8 and frame.shape == (SIZE, SIZE, 3)
        a = self.actions[min(self.t, len(self.actions) - 1)]
        self.t += 1
        return a[None]


@pytest.fixture(scope="module")
def expert_run():
    from vla_jax.sim.metaworld.worker import RemoteTaskEnv

    env = RemoteTaskEnv("drawer-close-v3", SIZE)
    episode = env.expert_episode(mt.episode_seed("collect", 0, "drawer-close-v3", 0))
    yield env, episode
    env.close()


def test_replayed_expert_succeeds_at_the_same_step_in_the_eval_loop(expert_run):
    env, episode = expert_run
    seed = mt.episode_seed("collect", 0, "drawer-close-v3", 0)
    assert episode.success and episode.frames.shape == (len(episode.actions), SIZE, SIZE, 3)
    assert episode.states.shape == (len(episode.actions), 4) and np.all(np.abs(episode.actions) <= 1)
    policy = Replay(episode.actions)
    result = run_episode(policy, env, seed, max_steps=500, record=True)
    assert result.success and result.steps == len(episode.actions)
    assert policy.instruction == mt.INSTRUCTIONS["drawer-close-v3"]
    np.testing.assert_array_equal(result.frames[0], episode.frames[0])  # collection and evaluation images agree
    # The registry's metaworld entry reads the same actions as stored and maps the gripper to the
    # canonical opening; the runtime's statistics map it back: the round trip drives the same episode.
    import tensorflow as tf

    from data_pipelines import oxe_registry as oxe
    from vla_runtime.policy_io import ActionStatistics

    spec = oxe.get_spec("metaworld")
    stored = spec.standardize({"action": tf.constant(episode.actions)})["action"].numpy()
    opening = spec.action_space.gripper.to_canonical(stored[:, 3])
    assert stored.shape == (len(episode.actions), 4) and np.all((opening >= 0) & (opening <= 1))
    box = {"mean": [0.0] * 4, "std": [1.0] * 4, "min": [-1.0] * 4, "max": [1.0] * 4, "q01": [-1.0] * 4}
    stats = ActionStatistics.from_dict(
        {
            "normalization": "none",
            "action": {**box, "q99": [1.0] * 4, "mask": [True] * 3 + [False]},
            "gripper": {"convention": str(spec.action_space.gripper)},
        }
    )
    returned = stats.denormalize(np.concatenate([stored[:, :3], opening[:, None]], axis=1))
    np.testing.assert_allclose(returned, np.clip(episode.actions, -1, 1), atol=1e-6)
    again = run_episode(Replay(returned), env, seed, max_steps=500)
    assert again.success and again.steps == len(episode.actions)
    idle = run_episode(Replay(np.zeros((1, 4))), env, seed, max_steps=25)
    assert not idle.success and idle.steps == 25


def test_action_mapping_and_bad_actions():
    np.testing.assert_allclose(to_metaworld_action([0.1, 0.2, 0.3, -1.0]), [0.1, 0.2, 0.3, -1.0])  # open, as given
    np.testing.assert_allclose(to_metaworld_action([2.0, 0, 0, -3.0]), [1.0, 0, 0, -1.0])
    with pytest.raises(VLAJaxError, match="non-finite"):
        to_metaworld_action([np.nan, 0, 0, 0])
    for wrong in ([0, 0], [0.1, 0.2, 0.3, 0, 0, 0, 1.0]):  # the retired 7-D eef7 padding is refused too
        with pytest.raises(VLAJaxError, match=f"{len(wrong)} dims"):
            to_metaworld_action(wrong)


def test_summary_groups_and_published_style_average():
    from vla_jax.evaluate.metaworld import EpisodeResult

    results = [
        EpisodeResult("reach-v3", 0, True, 10),
        EpisodeResult("reach-v3", 1, False, 500),
        EpisodeResult("push-v3", 0, False, 500),
        EpisodeResult("shelf-place-v3", 0, True, 80),
    ]
    s = summarize(results)
    assert s["per_task"]["reach-v3"]["success"] == 0.5
    assert s["per_difficulty"] == {
        "easy": {"tasks": 1, "success": 0.5},
        "hard": {"tasks": 1, "success": 0.0},
        "very_hard": {"tasks": 1, "success": 1.0},
    }
    assert s["average"] == pytest.approx(0.5) and s["mean_over_tasks"] == pytest.approx(0.5)


def test_collect_cli_writes_rlds_with_state_action_instruction_and_difficulty(tmp_path, capsys):
    import tensorflow_datasets as tfds

    from vla_jax.cli import main

    out = tmp_path / "rlds"
    assert (
        main(
            [
                "sim-collect",
                "--env",
                "metaworld",
                "--tasks",
                "reach-v3,peg-insert-side-v3",
                "--episodes-per-task",
                "1",
                "--image-size",
                str(SIZE),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "mean expert success" in capsys.readouterr().out
    folder = out / "metaworld" / "1.0.0"
    report = json.loads((folder / "collection.json").read_text())
    assert set(report["per_task"]) == {"reach-v3", "peg-insert-side-v3"}
    for entry in report["per_task"].values():
        assert entry["kept"] == 1 and entry["attempts"] >= 1
        assert entry["expert_success"] == pytest.approx(entry["kept"] / entry["attempts"])
    builder = tfds.builder_from_directory(str(folder))
    assert {f.value for f in builder.info.available_file_formats()} == {"tfrecord", "array_record"}
    episodes = list(tfds.as_numpy(builder.as_dataset(split="train")))
    assert len(episodes) == 2
    for ep in episodes:
        meta = ep["episode_metadata"]
        task = meta["task"].decode()
        assert meta["difficulty"].decode() == mt.DIFFICULTY[task]
        steps = list(ep["steps"])
        assert len(steps) == report["per_task"][task]["steps"][0]
        assert steps[0]["observation"]["image"].shape == (SIZE, SIZE, 3)
        assert steps[0]["observation"]["state"].shape == (4,) and steps[0]["action"].shape == (4,)
        assert all(np.all(np.abs(s["action"]) <= 1) for s in steps)
        assert {s["language_instruction"].decode() for s in steps} == {mt.INSTRUCTIONS[task]}
        assert steps[-1]["is_terminal"] and steps[0]["is_first"]
    with pytest.raises(SystemExit):
        main(["sim-collect", "--env", "metaworld", "--camera", "nope", "--out", str(out)])
    # Collection ran MuJoCo in the worker only: no GL library is mapped into this (TensorFlow) process.
    maps = open("/proc/self/maps").read()
    assert not any(lib in maps for lib in GL_LIBRARIES)
