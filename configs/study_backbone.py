"""Study: backbone family, as an ARCHITECTURE comparison at matched tiny width, from scratch (not pre-trained VLMs).

    vla-jax study --config configs/study_backbone.py --out runs/backbone          # CPU size
    vla-jax train --config configs/study_backbone.py:paligemma --workdir W ...    # one family's training config

What this measures, and what it does not. Every family vla-jax supports (`SUPPORTED_MODEL_TYPES` in
vla_jax/models/backbone.py: kosmos-2, clip-kosmos-2, paligemma, smolvlm, llava, qwen2_5_vl, qwen2_vl, idefics)
at its tests' tiny size (`FamilyConfig.tiny()`: 32-wide towers, 2 layers each, vocab 1024), random
initialisation, the same policy-head LSTM structure, window 2, chunk 4, 2-D actions, the same 72
mobile episodes and optimiser as configs/demo.py. So it compares the wiring (how a family turns frames
into tokens, its attention pattern, position scheme, connector), not what a pre-trained VLM knows.
The RoboVLMs backbone finding is about pre-trained VLMs (their vision-language pre-training is the
point); a table from this study says nothing about that, and docs/study.md says so next to it.

Frames: the data are collected and converted at 48 px; every family's vision tower runs at 48 px
(patch 8, or 4 with SmolVLM's 2x2 pixel shuffle), except Qwen2-VL / Qwen2.5-VL, whose 14 px patches
and 28 px attention windows need a multiple of 28: 56 px (the loader and the runtime resize frames to
the model's image size, vla_runtime.policy_io).

With real weights on a GPU/TPU (the comparison the paper makes): one cell per family with the
family's post-training config and a converted checkpoint, e.g. a study file whose cells are

    Cell("paligemma", {"backbone": "paligemma"}, "configs/posttrain_mobile_paligemma.py:{step:rlds},/ckpt/pg224",
         overrides={"num_steps": 5000}, eval=["sim-eval", "--env", "mobile", "--episodes", "50",
                                              "--image-size", "224", "--seed", "1"])

for each of configs/posttrain_mobile_{kosmos2,clip_kosmos2,paligemma,smolvlm,llava,qwen2_5_vl,idefics}.py
(ARG = "RLDS_DIR,INIT_FROM[,TOKENIZER]", the checkpoint from `vla-jax convert-hf`; each config's
docstring gives its image size, memory and LoRA settings), the shared steps collecting and converting
at that image size (`convert-episodes --image-size 224`), and `--emit slurm|tpu` to run the cells as
one job each (docs/study.md). Nothing of that is measured here (no GPU, no model hub on this machine).
"""

from pathlib import Path

import ml_collections

from vla_jax.study.recipes import mobile_data
from vla_jax.study.spec import Cell, Study, Table

CONFIG = str(Path(__file__).resolve())
DEMO = Path(__file__).resolve().with_name("demo.py")
IMAGE_SIZE = 48
FAMILY_IMAGE_SIZE = {"qwen2_5_vl": 56, "qwen2_vl": 56}  # 14 px patches in 28 px windows
SEEDS = (0, 1, 2)
NUM_STEPS = 300
EVAL_EPISODES = 10


def families() -> tuple[str, ...]:
    from vla_jax.models.backbone import SUPPORTED_MODEL_TYPES

    return SUPPORTED_MODEL_TYPES


def tiny_backbone(model_type: str):
    """The family's tiny test config with its vision tower at the study's image size."""
    from vla_jax.models import backbone

    config = backbone.family(model_type).config_cls.tiny()
    return config.replace(vision={"image_size": FAMILY_IMAGE_SIZE.get(model_type, IMAGE_SIZE)})


def get_config(arg: str = "kosmos-2"):
    """configs/demo.py's training run with the tiny `arg` family as the backbone (data dirs set by the study)."""
    from vla_jax.train.config import load_config_file
    from vla_jax.train.model import backbone_config_dict

    config = load_config_file(str(DEMO))
    config.model.backbone = ml_collections.ConfigDict(backbone_config_dict(tiny_backbone(arg)))
    return config


def get_study(arg=None) -> Study:
    size = str(IMAGE_SIZE)
    shared = mobile_data(72, IMAGE_SIZE)
    cells = [
        Cell(
            model_type,
            {"structure": "policy_head (tiny, from scratch)", "backbone": model_type},
            f"{CONFIG}:{model_type}",
            overrides={
                "num_steps": NUM_STEPS,
                "checkpoint.every": NUM_STEPS,
                "data.config.data_dir": "{step:rlds}",
                "data.tokenizer": "{step:tokenizer}",
            },
            eval=["sim-eval", "--env", "mobile", "--episodes", str(EVAL_EPISODES), "--seed", "1"]
            + ["--image-size", size, "--gifs", "0"],
        )
        for model_type in families()
    ]
    return Study(
        "backbone",
        seeds=SEEDS,
        shared=shared,
        cells=cells,
        tables=[
            Table(
                "backbone family at matched tiny width, from scratch (an architecture comparison, not pre-trained "
                "VLMs): closed-loop success",
                rows="structure",
                cols="backbone",
            )
        ],
        env={"MUJOCO_GL": "egl"},
    )
