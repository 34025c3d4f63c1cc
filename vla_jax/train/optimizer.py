"""AdamW with warmup + cosine/constant schedule, clipping, decay mask, freezing, accumulation.

Freezing follows RoboVLMs' `_trainable_params_setup`, in its order:
``freeze_backbone`` sets the whole backbone, then ``train_vision`` overrides the
vision tower, then ``train_text_embedding`` overrides the token embedding. The
frozen leaves are routed to `optax.set_to_zero` through `optax.multi_transform`,
so they carry no Adam moments (memory) and never move; the train step also
skips their gradients (compute). With LoRA every base parameter the flags
freeze stays frozen and all adapters train.

Weight decay applies only to dense/conv ``kernel`` leaves outside embeddings:
layer-norm scales, biases, embeddings, learned queries and LoRA factors are
not decayed (decaying a norm scale towards 0 fights the normalisation).
"""

from __future__ import annotations

import re
from typing import Any

import jax
import optax
from flax import traverse_util

from vla_jax.errors import VLAJaxError

TRAINABLE, FROZEN = "trainable", "frozen"


def _path_str(path: tuple) -> str:
    return "/".join(str(p) for p in path)


def learning_rate_schedule(opt_cfg: Any, num_steps: int) -> optax.Schedule:
    """Linear warmup to ``learning_rate`` then cosine decay (to ``end_lr_ratio``) or constant."""
    peak, warmup = float(opt_cfg.learning_rate), int(opt_cfg.warmup_steps)
    if opt_cfg.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0 if warmup else peak,
            peak_value=peak,
            warmup_steps=warmup,
            decay_steps=max(num_steps, warmup + 1),
            end_value=peak * float(opt_cfg.end_lr_ratio),
        )
    if opt_cfg.schedule == "constant":
        if not warmup:
            return optax.constant_schedule(peak)
        return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), optax.constant_schedule(peak)], [warmup])
    raise VLAJaxError(f"config optimizer.schedule={opt_cfg.schedule!r}: choose 'cosine' or 'constant'")


def decay_mask(params: Any) -> Any:
    """True where AdamW's decoupled weight decay applies (see module docstring)."""
    flat = traverse_util.flatten_dict(params)
    mask = {}
    for path, _ in flat.items():
        name = str(path[-1])
        in_embedding = any("embed" in str(p) for p in path)
        mask[path] = name == "kernel" and not in_embedding
    return traverse_util.unflatten_dict(mask)


def _matches(pattern: str, path: tuple) -> bool:
    return re.search(pattern, _path_str(path)) is not None


def trainable_mask(params: Any, freeze_cfg: Any, lora_enabled: bool = False) -> Any:
    """Bool tree, True = trained. ``params`` is the state's param tree (LoRA layout included)."""
    if lora_enabled:
        base_mask = trainable_mask(params["base"], freeze_cfg, lora_enabled=False)
        lora_mask = jax.tree.map(lambda _: True, params["lora"])
        return {"base": base_mask, "lora": lora_mask}
    flat = traverse_util.flatten_dict(params)
    rules = [
        ("freeze_backbone", freeze_cfg.backbone_pattern, not freeze_cfg.freeze_backbone),
        ("train_vision", freeze_cfg.vision_pattern, bool(freeze_cfg.train_vision)),
        ("train_text_embedding", freeze_cfg.text_embedding_pattern, bool(freeze_cfg.train_text_embedding)),
    ]
    mask = {path: True for path in flat}
    for flag, pattern, value in rules:
        hits = [path for path in flat if _matches(pattern, path)]
        if not hits:
            raise VLAJaxError(
                f"config freeze.{flag}: its pattern {pattern!r} matches no parameter; "
                f"fix the pattern (parameters look like {_path_str(next(iter(flat)))!r})"
            )
        for path in hits:
            mask[path] = value
    return traverse_util.unflatten_dict(mask)


def make_optimizer(config: Any, params: Any, mask: Any) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The full optimizer for ``params`` with trainable ``mask``; returns it with its lr schedule.

    The schedule counts optimizer updates (not micro-batches): under
    `optax.MultiSteps` the inner AdamW only ticks once per accumulated batch.
    """
    opt_cfg = config.optimizer
    schedule = learning_rate_schedule(opt_cfg, int(config.num_steps))
    chain = []
    if opt_cfg.grad_clip and opt_cfg.grad_clip > 0:
        chain.append(optax.clip_by_global_norm(float(opt_cfg.grad_clip)))
    chain.append(
        optax.adamw(
            learning_rate=schedule,
            b1=float(opt_cfg.b1),
            b2=float(opt_cfg.b2),
            eps=float(opt_cfg.eps),
            weight_decay=float(opt_cfg.weight_decay),
            mask=decay_mask(params),
        )
    )
    labels = jax.tree.map(lambda trained: TRAINABLE if trained else FROZEN, mask)
    optimizer = optax.multi_transform({TRAINABLE: optax.chain(*chain), FROZEN: optax.set_to_zero()}, labels)
    accum = int(opt_cfg.grad_accum_steps)
    if accum < 1:
        raise VLAJaxError(f"config optimizer.grad_accum_steps={accum} must be >= 1")
    if accum > 1:
        optimizer = optax.MultiSteps(optimizer, every_k_schedule=accum)
    return optimizer, schedule  # pyright: ignore[reportReturnType]  (MultiSteps is one in practice)
