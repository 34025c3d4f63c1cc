"""A toy study for the tests: 2 cells (mirror augmentation off / on) x 1 seed of a one-layer model on 4 mobile episodes.

    vla-jax study --config tests/study_toy.py --out /tmp/toy

The same file is the cells' training config (tests/tiny_arm_config.py's model with 2-D actions): 32 px,
one layer per tower, 4 steps of batch 8; evaluation is 2 episodes of 4 control steps. The two cells differ only in the
data loader, so they compile the same programs (the test shares them through JAX's persistent cache).
"""

from pathlib import Path

from vla_jax.study.spec import Cell, Step, Study, Table

SIZE = 32
CONFIG = __file__


def get_config(arg=None):
    """tests/tiny_arm_config.py's one-layer model on the mobile data: 2-D actions, no gripper, grain loader
    (its data paths are the study's overrides)."""
    from vla_jax.train.config import load_config_file

    config = load_config_file(f"{Path(__file__).with_name('tiny_arm_config.py')}:set-by-the-study")
    config.batch_size, config.log_every = 8, 2  # 8: the tests run it on 8 CPU devices
    config.model.action_dim, config.model.has_gripper = 2, False
    config.data.config.update(dict(kind="mobile_grain", mixture="mobile", data_dir="", stats_cache_dir=""))
    return config


def get_study(arg=None):
    shared = [
        Step("collect", ["sim-collect", "--episodes", "4", "--image-size", str(SIZE), "--seed", "3", "--out", "{dir}"]),
        Step(
            "rlds",
            ["convert-episodes", "--src", "{step:collect}", "--out", "{dir}", "--image-size", str(SIZE)]
            + ["--action-dim", "2", "--overwrite"],
        ),
        Step(
            "tokenizer",
            ["tokenizer", "--from-dataset", "mobile_episodes", "--data-dir", "{step:rlds}", "--out", "{dir}"]
            + ["--vocab-size", "300"],
        ),
    ]
    evaluate = ["sim-eval", "--env", "mobile", "--episodes", "2", "--max-steps", "4", "--gifs", "0"]
    cells = [
        Cell(
            f"mirror_{mirror}",
            {"structure": "policy_head", "mirror": mirror},
            CONFIG,
            overrides={
                "data.config.mirror_augment": mirror == "on",
                "data.config.data_dir": "{step:rlds}",
                "data.tokenizer": "{step:tokenizer}",
            },
            eval=[*evaluate, "--image-size", str(SIZE)],
        )
        for mirror in ("off", "on")
    ]
    return Study(
        "toy",
        seeds=(0,),
        shared=shared,
        cells=cells,
        tables=[Table("toy success", rows="structure", cols="mirror")],
        env={"MUJOCO_GL": "egl"},
    )
