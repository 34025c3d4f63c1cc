"""The train state: everything a step reads and writes, as one pytree.

Keeping params, optimizer state, step counter and RNG key together means one
sharding tree, one donated buffer set and one orbax item: a resumed run
restores all four at once and continues bit-for-bit.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp


class TrainState(flax.struct.PyTreeNode):
    """``params`` are float32 master weights; with LoRA they are ``{"base": ..., "lora": ...}``."""

    step: jax.Array  # int32 scalar: number of train-step calls (micro-batches when accumulating)
    params: Any
    opt_state: Any
    rng: jax.Array  # uint32 [2] raw key: split once per step for dropout / LoRA dropout

    @classmethod
    def create(cls, params: Any, optimizer, rng: jax.Array) -> TrainState:
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params), rng=rng)
