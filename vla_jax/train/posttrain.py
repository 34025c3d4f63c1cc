"""The one recipe behind every `configs/posttrain_mobile_<backbone>.py`: post-train a policy on the users'
mobile-robot episodes (2-D velocity actions, RLDS from `vla-jax convert-episodes`).

ARG = "RLDS_DIR,INIT_FROM[,TOKENIZER_DIR]". INIT_FROM is `vla-jax convert-hf` output (backbone only) or a
pre-training workdir (new optimizer, new statistics, the head re-initialised when its shape changed).
The backbone architecture is READ from INIT_FROM (its config.json), so one config file serves every size
of a family (SmolVLM 256M and 500M, a tiny test checkpoint); the family's released size is the fallback
when INIT_FROM does not exist yet (e.g. printing the config). The image size follows the backbone.
"""

from __future__ import annotations

import json
from pathlib import Path

import ml_collections

from vla_jax.convert.hf_checkpoint import read_hf_config
from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.train.defaults import base_config


def backbone_from_init(init_from: str, fallback, **knobs):
    """The backbone config of convert-hf output or a training workdir at `init_from`; `fallback` otherwise."""
    path = Path(init_from) if init_from else None
    if path is not None and (path / "params.safetensors").is_file():
        config = read_hf_config(path, **knobs)
    elif path is not None and (path / "config.json").is_file() and (path / "checkpoints").is_dir():
        config = backbone_lib.config_from_dict(json.loads((path / "config.json").read_text())["model"]["backbone"])
        config = config.replace(**knobs)
    else:
        return fallback.replace(**knobs)
    if config.model_type != fallback.model_type:
        raise VLAJaxError(
            f"init_from {init_from} holds a {config.model_type} backbone, but this config is for "
            f"{fallback.model_type}; use configs/posttrain_mobile_<its family>.py"
        )
    return config


def mobile_posttrain_config(
    arg: str,
    fallback_backbone,
    *,
    window_size: int = 8,
    action_chunk: int = 8,
    instruction_length: int = 32,
    batch_size: int = 16,
    num_steps: int = 5000,
    learning_rate: float = 2e-4,
    lora: bool = True,
    dtype: str = "bfloat16",
    remat: bool = True,
) -> ml_collections.ConfigDict:
    """ARG as in the module docstring. LoRA (rank 32) on the LM's attention + MLP, vision tower and embeddings
    frozen, head trained; ``lora=False``: full fine-tuning of everything."""
    parts = arg.split(",")
    data_dir, init_from = parts[0], parts[1] if len(parts) > 1 else ""
    tokenizer = parts[2] if len(parts) > 2 else init_from
    backbone = backbone_from_init(init_from, fallback_backbone, dtype=dtype, remat=remat)
    config = base_config()
    config.seed = 0
    config.num_steps = num_steps
    config.batch_size = batch_size
    config.log_every = 25
    config.init_from = init_from
    config.init_reinit = r"^head/"  # e.g. a 7-D pre-training head -> the 2-D mobile head

    config.model = ml_collections.ConfigDict(
        dict(
            backbone=backbone.to_dict(),
            structure="policy_head",
            head="lstm",
            window_size=window_size,
            action_chunk=action_chunk,
            action_dim=2,
            has_gripper=False,
            head_hidden_size=1024,
            head_layers=4,
        )
    )
    config.data.source = "loader"
    config.data.tokenizer = tokenizer
    config.data.instruction_length = instruction_length
    config.data.config.update(
        dict(  # shapes come from config.model and data.instruction_length (train.model.data_shapes)
            kind="mobile_grain",
            data_dir=data_dir,
            normalization="bounds",
            augment=True,
            mirror_augment=True,
            worker_count=4,
        )
    )

    config.optimizer.learning_rate = learning_rate
    config.optimizer.warmup_steps = 200
    config.optimizer.schedule = "cosine"
    config.optimizer.end_lr_ratio = 0.05
    config.optimizer.weight_decay = 0.01

    config.lora.enabled = lora
    config.lora.rank = 32
    config.lora.alpha = 64.0
    config.lora.dropout = 0.05
    config.freeze.freeze_backbone = lora
    config.freeze.train_vision = not lora
    config.freeze.train_text_embedding = not lora

    config.checkpoint.every = 500
    config.checkpoint.keep = 2
    return config
