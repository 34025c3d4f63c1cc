"""Every train-config field with its default; config files start from `base_config()`.

Having all keys present up front is what makes ``--config.key=value`` typed
and lets an unknown key be reported with its closest valid neighbours.
"""

from __future__ import annotations

import dataclasses

import ml_collections
from ml_collections import config_dict

from data_pipelines import loader
from data_pipelines.frame_transforms import AugmentConfig
from vla_jax.train.lora import DEFAULT_TARGET


def data_loader_defaults() -> ml_collections.ConfigDict:
    """Every `data_pipelines.loader` field except the shapes, which come from `config.model` (see
    vla_jax.train.model.data_shapes); fields that default to None hold a typed placeholder."""
    c = ml_collections.ConfigDict()
    for key, value in loader.DEFAULTS.items():
        if key in loader.SHAPE_KEYS:
            continue
        if value is None:
            c[key] = config_dict.placeholder(loader.OPTIONAL_TYPES[key])
        elif key == "augment_kwargs":  # every augmentation knob, so each one overrides on its own
            c[key] = ml_collections.ConfigDict(
                {k: tuple(v) if isinstance(v, list) else v for k, v in dataclasses.asdict(AugmentConfig()).items()}
            )
        else:
            c[key] = value
    return c


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_steps = 1000  # optimizer updates (each of batch_size * optimizer.grad_accum_steps samples)
    c.batch_size = 8  # global batch per train-step call, over all hosts and devices
    c.log_every = 10
    c.progress_bar = True
    # Skip LLVM's expensive passes when compiling (about 3x faster compiles, slower steps): for CPU
    # smoke tests and tests that compare runs with each other, never for real training.
    c.xla_fast_compile = False
    # A step with a non-finite loss, gradient norm or update never changes the state. "stop": end the
    # run there with one line naming the step; "skip": drop that update, count it and go on.
    c.on_nonfinite = "stop"
    # "" | convert-hf output folder | training workdir (see vla_jax.train.model)
    c.init_from = ""
    c.init_reinit = r"^head/"  # params that may be freshly initialised when init_from's shapes differ

    c.model = ml_collections.ConfigDict()  # VLAConfig fields + backbone (Kosmos2Config fields); set by each config

    c.data = ml_collections.ConfigDict()
    c.data.source = "synthetic"  # "synthetic" | "loader" (data_pipelines.loader.make_loader)
    c.data.instruction_length = 16
    c.data.tokenizer = ""  # folder with tokenizer.json (convert-hf output) for source="loader"
    c.data.config = data_loader_defaults()  # with data_shapes(config), the make_loader data_config

    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = -1  # -1: all devices not used by fsdp
    c.mesh.fsdp = 1  # 1 = replicated params (pmap-style data parallel); >1 = FSDP sharding
    c.mesh.min_shard_size = 2**14  # leaves smaller than this many elements stay replicated

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.learning_rate = 1e-4
    c.optimizer.warmup_steps = 100
    c.optimizer.schedule = "cosine"  # "cosine" | "constant"
    c.optimizer.end_lr_ratio = 0.0
    c.optimizer.b1 = 0.9
    c.optimizer.b2 = 0.999
    c.optimizer.eps = 1e-8
    c.optimizer.weight_decay = 0.0
    c.optimizer.grad_clip = 1.0  # global-norm clip; 0 disables
    c.optimizer.grad_accum_steps = 1  # optax.MultiSteps micro-batches per update

    # RoboVLMs-style trainability flags (applied in this order) and the param paths they address.
    c.freeze = ml_collections.ConfigDict()
    c.freeze.freeze_backbone = False
    c.freeze.train_vision = True
    c.freeze.train_text_embedding = True
    c.freeze.backbone_pattern = r"^backbone/"
    c.freeze.vision_pattern = r"^backbone/vision_model/"
    c.freeze.text_embedding_pattern = r"^backbone/text_model/embed_tokens/"

    c.lora = ml_collections.ConfigDict()
    c.lora.enabled = False
    c.lora.rank = 16
    c.lora.alpha = 32.0
    c.lora.dropout = 0.05
    c.lora.target = DEFAULT_TARGET

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.every = 1000  # optimizer updates between saves (plus one at the end and on SIGTERM)
    c.checkpoint.keep = 3
    c.checkpoint.use_async = True

    c.wandb = ml_collections.ConfigDict()
    c.wandb.enabled = False
    c.wandb.project = "vla-jax"
    c.wandb.name = ""
    return c
