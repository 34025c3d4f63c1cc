"""A toy study for the tests: 2 cells (mirror augmentation off / on) x 1 seed of a one-layer model on 4 mobile episodes.

    vla-jax study --config tests/study_toy.py --out /tmp/toy

The same file is the cells' training config (`get_config(data_root)`): 32 px, one layer per tower,
4 steps of batch 8; evaluation is 2 episodes of 4 control steps. The two cells differ only in the
data loader, so they compile the same programs (the test shares them through JAX's persistent cache).
"""

import dataclasses

import ml_collections

from vla_jax.study.spec import Cell, Step, Study, Table

SIZE = 32
CONFIG = __file__


def get_config(arg=None):
    from vla_jax.models.kosmos2 import Kosmos2Config
    from vla_jax.train.defaults import base_config
    from vla_jax.train.model import backbone_config_dict

    config = base_config()
    config.num_steps, config.batch_size, config.log_every = 4, 8, 2  # 8: the tests run it on 8 CPU devices
    config.xla_fast_compile = True
    tiny = Kosmos2Config.tiny()
    backbone = dataclasses.replace(
        tiny,
        text=dataclasses.replace(tiny.text, vocab_size=300, layers=1, max_position_embeddings=64),
        vision=dataclasses.replace(tiny.vision, num_hidden_layers=1, image_size=SIZE),
    )
    config.model = ml_collections.ConfigDict(
        dict(
            backbone=backbone_config_dict(backbone),
            structure="policy_head",
            head="lstm",
            window_size=2,
            action_chunk=2,
            action_dim=2,
            has_gripper=False,
            head_hidden_size=16,
            head_layers=1,
        )
    )
    config.data.source = "loader"
    config.data.tokenizer = ""  # set by the study (override)
    config.data.instruction_length = 16
    config.data.config.update(dict(kind="mobile_grain", data_dir="", normalization="bounds", augment=False))
    config.optimizer.warmup_steps = 1
    config.checkpoint.every, config.checkpoint.keep = 4, 1
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
