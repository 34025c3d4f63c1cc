"""Policy losses (RoboVLMs' recipe) and their metrics.

Continuous structures:
    loss = mean_valid(huber(pred_arm - target_arm))            (or MSE: loss_type="mse")
         + gripper_loss_ratio * mean_valid(BCE(gripper_logit, target_gripper))
RoboVLMs weights the gripper term by 0.01 (``arm_gripper_loss_ratio``).

Discrete structure:
    loss = mean_valid(cross_entropy(action_logits, bin(target)))   over every dim, gripper included.

"Valid" entries: ``action_mask [B, T, C]`` (false past the episode end) AND
``image_mask [B, T]`` (a step before the episode start predicts nothing: the
policy zeroes it) AND ``action_dim_mask [B, A]`` (false for the padded dims of
this sample's embodiment). Means are over valid entries only, so padding never
dilutes the loss; an all-padded batch gives loss 0, not NaN.

Metrics (all scalars, so any logger can take them): ``loss``, ``arm_loss``,
``gripper_loss`` / ``gripper_acc`` (with a gripper), ``token_acc`` (discrete),
``abs_error`` (mean over valid dims) and ``abs_error_dim{i}`` per action dim.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from vla_jax import actions as act


def masked_mean(x, mask):
    mask = jnp.broadcast_to(mask, x.shape).astype(jnp.float32)
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def valid_steps(batch) -> jnp.ndarray:
    """bool [B, T, C]: chunk entries that carry a real target."""
    mask = batch["action_mask"].astype(bool)
    if "image_mask" in batch:
        mask = mask & batch["image_mask"].astype(bool)[:, :, None]
    return mask


def _abs_error_metrics(pred, target, mask):
    """Per-dim mean |pred - target| over valid entries; mask [B, T, C, A]."""
    err = jnp.abs(pred.astype(jnp.float32) - target)
    metrics = {"abs_error": masked_mean(err, mask)}
    for i in range(err.shape[-1]):
        metrics[f"abs_error_dim{i}"] = masked_mean(err[..., i], mask[..., i])
    return metrics


def vla_loss(config, outputs: dict, batch: dict):
    """-> (scalar loss, metrics dict). `config` is a `vla_jax.vla.VLAConfig`."""
    target = batch["action"].astype(jnp.float32)
    steps = valid_steps(batch)  # [B, T, C]
    dims = batch["action_dim_mask"].astype(bool)[:, None, None, :]  # [B, 1, 1, A]
    mask = steps[..., None] & dims  # [B, T, C, A]
    metrics = _abs_error_metrics(outputs["action"], target, mask)

    if config.structure == "one_step_discrete":
        tok = act.ActionTokenizer(config.backbone.vocab_size, config.num_bins, config.mu_law, config.has_gripper)
        labels = tok.to_bins(target)
        logits = outputs["action_logits"].astype(jnp.float32)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        loss = masked_mean(ce, mask)
        metrics["token_acc"] = masked_mean((jnp.argmax(logits, -1) == labels).astype(jnp.float32), mask)
        metrics["loss"] = loss
        return loss, metrics

    n_arm = config.action_dim - 1 if config.has_gripper else config.action_dim
    pred_arm = outputs["action"][..., :n_arm].astype(jnp.float32)
    if config.loss_type == "huber":
        arm = optax.huber_loss(pred_arm, target[..., :n_arm], delta=config.huber_delta)
    else:
        arm = optax.squared_error(pred_arm, target[..., :n_arm])
    arm_loss = masked_mean(arm, mask[..., :n_arm])
    loss = arm_loss
    metrics["arm_loss"] = arm_loss
    if config.has_gripper:
        logits = outputs["gripper_logits"].astype(jnp.float32)
        g_target = target[..., -1]
        g_mask = mask[..., -1]
        bce = optax.sigmoid_binary_cross_entropy(logits, g_target)
        gripper_loss = masked_mean(bce, g_mask)
        loss = loss + config.gripper_loss_ratio * gripper_loss
        metrics["gripper_loss"] = gripper_loss
        metrics["gripper_acc"] = masked_mean(((logits > 0) == (g_target > 0.5)).astype(jnp.float32), g_mask)
    metrics["loss"] = loss
    return loss, metrics
