"""LoRA adapters as a parameter-tree transform (no change to the model code).

For every selected dense kernel ``W [..., in, out]`` (leading axes are the
`nn.scan` layer stack) we add ``A [..., in, r]`` and ``B [..., r, out]`` and run
the model with ``W + (alpha / r) * A @ B``. ``B`` starts at zero, so step 0 is
exactly the base model; only ``A`` and ``B`` (plus whatever the freeze flags
leave trainable, e.g. the new action head) receive gradients. Working on the
tree rather than wrapping modules keeps the backbone, the converter and the
export untouched: `merge` is also what export uses to fold adapters away.

Dropout: a merged weight cannot drop per-token inputs, so ``lora.dropout``
drops rows of ``A`` (input features of the adapter path), one mask per layer
and step shared by all tokens of the batch. It regularises the adapter the
same way in expectation, at no extra activation memory.

The train state holds ``{"base": model params, "lora": adapters}`` where the
adapter tree mirrors the kernel paths: ``.../q_proj/kernel`` gains
``.../q_proj/lora_a`` and ``.../q_proj/lora_b``.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
from flax import traverse_util

from vla_jax.errors import VLAJaxError

# The LM of every backbone family (each names it `text_model`): self-attention q/k/v/out (Kosmos-2 `out_proj`,
# `vla_jax.models.decoder` `o_proj`) and the MLP (Kosmos-2 `ffn/fc1|fc2`, decoder `mlp/gate|up|down_proj`).
DEFAULT_TARGET = (
    r"text_model/.*(self_attn/(q_proj|k_proj|v_proj|out_proj|o_proj)|ffn/(fc1|fc2)"
    r"|mlp/(gate_proj|up_proj|down_proj))/kernel$"
)


def target_paths(params: Any, pattern: str) -> list[tuple]:
    flat: dict[Any, Any] = traverse_util.flatten_dict(params)
    hits = [path for path, leaf in flat.items() if re.search(pattern, "/".join(map(str, path))) and leaf.ndim >= 2]
    if not hits:
        raise VLAJaxError(
            f"config lora.target={pattern!r} matches no dense kernel; "
            f"set it to a regex over parameter paths such as {'/'.join(map(str, next(iter(flat))))!r}"
        )
    return sorted(hits)


def init_lora(params: Any, lora_cfg: Any, rng: jax.Array) -> Any:
    """Adapters for every targeted kernel: ``A`` ~ N(0, 1/in), ``B`` = 0."""
    rank = int(lora_cfg.rank)
    if rank < 1:
        raise VLAJaxError(f"config lora.rank={rank} must be >= 1")
    flat: dict[Any, Any] = traverse_util.flatten_dict(params)
    adapters = {}
    for i, path in enumerate(target_paths(params, lora_cfg.target)):
        kernel = flat[path]
        *lead, fan_in, fan_out = kernel.shape
        a = jax.random.normal(jax.random.fold_in(rng, i), (*lead, fan_in, rank), jnp.float32) / jnp.sqrt(fan_in)
        adapters[path[:-1] + ("lora_a",)] = a
        adapters[path[:-1] + ("lora_b",)] = jnp.zeros((*lead, rank, fan_out), jnp.float32)
    return traverse_util.unflatten_dict(adapters)


def merge(base: Any, adapters: Any, lora_cfg: Any, rng: jax.Array | None = None) -> Any:
    """Base params with ``(alpha / r) A @ B`` added to each adapted kernel (see module docstring)."""
    scale = float(lora_cfg.alpha) / int(lora_cfg.rank)
    rate = float(lora_cfg.dropout)
    flat: dict[Any, Any] = dict(traverse_util.flatten_dict(base))
    flat_ad: dict[Any, Any] = traverse_util.flatten_dict(adapters)
    for i, path in enumerate(sorted(p for p in flat_ad if p[-1] == "lora_a")):
        a, b = flat_ad[path], flat_ad[path[:-1] + ("lora_b",)]
        kernel_path = path[:-1] + ("kernel",)
        if rng is not None and rate > 0.0:
            keep = jax.random.bernoulli(jax.random.fold_in(rng, i), 1.0 - rate, a.shape[:-1] + (1,))
            a = jnp.where(keep, a / (1.0 - rate), 0.0)
        kernel = flat[kernel_path]
        flat[kernel_path] = kernel + scale * jnp.einsum("...ir,...ro->...io", a, b).astype(kernel.dtype)
    return traverse_util.unflatten_dict(flat)
