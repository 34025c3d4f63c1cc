"""The train step: one `jax.jit` over the mesh, explicit shardings, donated state.

Gradients are taken only with respect to the trainable leaves (frozen backbone
weights cost no backward pass and no gradient memory); the optimizer still
sees the whole tree so `optax.multi_transform` can route frozen leaves to
`set_to_zero`, and frozen params are passed through untouched, bit for bit.
Compute runs in the model's ``dtype`` (bf16 on accelerators) while params,
gradients and Adam moments stay float32 (master weights); the loss is float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import traverse_util
from jax.sharding import Mesh

from vla_jax.train import lora as lora_lib
from vla_jax.train.sharding import batch_sharding, replicated
from vla_jax.train.state import TrainState

LossFn = Callable[[Any, dict], tuple[jax.Array, dict]]


def split_trainable(params: Any, mask: Any) -> tuple[dict, dict]:
    """Flat ``{path: leaf}`` dicts of trainable and frozen leaves."""
    flat, flat_mask = traverse_util.flatten_dict(params), traverse_util.flatten_dict(mask)
    trainable = {k: v for k, v in flat.items() if flat_mask[k]}
    frozen = {k: v for k, v in flat.items() if not flat_mask[k]}
    return trainable, frozen


def action_error_per_dim(outputs: dict, batch: dict) -> jax.Array:
    """Masked mean |pred - target| per action dim (normalised units), float32 [A]."""
    pred = outputs["action"].astype(jnp.float32)
    target = batch["action"].astype(jnp.float32)
    mask = batch["action_mask"][..., None] & batch["action_dim_mask"][:, None, None, :]
    mask = jnp.broadcast_to(mask, pred.shape).astype(jnp.float32)
    return jnp.sum(jnp.abs(pred - target) * mask, axis=(0, 1, 2)) / jnp.maximum(jnp.sum(mask, axis=(0, 1, 2)), 1.0)


def make_step_fn(
    apply_fn: Callable,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    mask: Any,
    *,
    lora_cfg: Any = None,
    grad_accum_steps: int = 1,
) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """The pure step ``(state, batch) -> (state, metrics)``; `jit_step` compiles it."""
    use_lora = lora_cfg is not None and bool(lora_cfg.enabled)

    def model_params(params: Any, rng: jax.Array) -> Any:
        if use_lora:
            return lora_lib.merge(params["base"], params["lora"], lora_cfg, rng)
        return params

    def step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        rng, dropout_rng, lora_rng = jax.random.split(state.rng, 3)
        trainable, frozen = split_trainable(state.params, mask)

        def loss_of(trainable_flat):
            params = traverse_util.unflatten_dict({**trainable_flat, **frozen})
            outputs = apply_fn(
                {"params": model_params(params, lora_rng)}, batch, deterministic=False, rngs={"dropout": dropout_rng}
            )
            loss, metrics = loss_fn(outputs, batch)
            return loss.astype(jnp.float32), (metrics, outputs)

        (loss, (metrics, outputs)), grads = jax.value_and_grad(loss_of, has_aux=True)(trainable)
        # Frozen leaves get zero "gradients" only to give optax a full tree; set_to_zero ignores
        # them, so XLA removes these zeros entirely.
        full_grads = traverse_util.unflatten_dict({**grads, **{k: jnp.zeros_like(v) for k, v in frozen.items()}})
        updates, opt_state = optimizer.update(full_grads, state.opt_state, state.params)
        flat_updates: dict[Any, Any] = traverse_util.flatten_dict(updates)
        flat_params: dict[Any, Any] = traverse_util.flatten_dict(state.params)
        new_flat = {k: (v + flat_updates[k].astype(v.dtype)) if k in trainable else v for k, v in flat_params.items()}
        new_params = traverse_util.unflatten_dict(new_flat)
        update_count = state.step // grad_accum_steps
        metrics = {
            **{k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()},
            "loss": loss,
            "grad_norm": optax.global_norm(grads),
            "learning_rate": jnp.asarray(schedule(update_count), jnp.float32),
            "action_error": action_error_per_dim(outputs, batch),
        }
        new_state = state.replace(step=state.step + 1, params=new_params, opt_state=opt_state, rng=rng)
        return new_state, metrics

    return step


FAST_COMPILE_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def fast_compile_xla_flags() -> str:
    """FAST_COMPILE_OPTIONS as XLA_FLAGS, for a whole process (subprocess tests, benchmarks' --quick)."""
    return " ".join(f"--{k}={str(v).lower()}" for k, v in FAST_COMPILE_OPTIONS.items())


def jit_step(
    step_fn: Callable, state_shardings: Any, batch_keys: list[str], mesh: Mesh, compiler_options: dict | None = None
) -> Callable:
    """Compile with explicit in/out shardings; the input state's buffers are donated."""
    batch_shardings = {key: batch_sharding(mesh) for key in batch_keys}
    return jax.jit(
        step_fn,
        in_shardings=(state_shardings, batch_shardings),
        out_shardings=(state_shardings, replicated(mesh)),
        donate_argnums=(0,),
        compiler_options=compiler_options,
    )
