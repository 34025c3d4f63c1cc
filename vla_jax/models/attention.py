"""Multi-head attention shared by the vision tower, the image-to-text projection and the text decoder.

Parameter names (q_proj/k_proj/v_proj/out_proj, inner_attn_ln) mirror Hugging Face's Kosmos-2 so
the conversion table reads one-to-one. The softmax itself is `jax.nn.dot_product_attention`, which
picks a fused kernel (cuDNN) on GPU and the plain XLA path on CPU/TPU.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class MultiHeadAttention(nn.Module):
    """Self- or cross-attention with biased projections, optionally with Kosmos-2's `inner_attn_ln`.

    `inner_ln_eps` set -> a LayerNorm on the concatenated heads before `out_proj` (Kosmos-2's
    "sub-LN"/Magneto trick in the text decoder; the vision tower and the projection have none).
    """

    num_heads: int
    inner_ln_eps: float | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, kv: jax.Array | None = None, mask: jax.Array | None = None) -> jax.Array:
        dim = x.shape[-1]
        if dim % self.num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by num_heads {self.num_heads}")
        head_dim = dim // self.num_heads
        kv = x if kv is None else kv

        def proj(name: str, inp: jax.Array) -> jax.Array:
            y = nn.Dense(dim, dtype=self.dtype, param_dtype=jnp.float32, name=name)(inp)
            return y.reshape(*y.shape[:-1], self.num_heads, head_dim)

        q, k, v = proj("q_proj", x), proj("k_proj", kv), proj("v_proj", kv)
        # mask: bool broadcastable to [B, heads, Tq, Tk]; True = may attend.
        out = jax.nn.dot_product_attention(q, k, v, mask=mask, scale=head_dim**-0.5)
        out = out.reshape(*out.shape[:-2], dim)
        if self.inner_ln_eps is not None:
            out = nn.LayerNorm(
                epsilon=self.inner_ln_eps, dtype=self.dtype, param_dtype=jnp.float32, name="inner_attn_ln"
            )(out)
        return nn.Dense(dim, dtype=self.dtype, param_dtype=jnp.float32, name="out_proj")(out)


def decoder_mask(
    attention_mask: jax.Array, block_ids: jax.Array | None = None, sliding_window: int | None = None
) -> jax.Array:
    """Self-attention mask of a decoder, bool [B, 1, S, S] (True = may attend).

    Query q sees key k iff k is a real token (``attention_mask[k]``) and either k <= q (inside
    ``sliding_window`` when given: k > q - window) or q and k share a non-negative ``block_ids``
    group (PaliGemma's bidirectional prefix). This is transformers' `masking_utils` with
    ``block_sequence_ids`` (causal OR same block, AND padding).

    ``attention_mask`` [B, S] marks the real keys; [B, S, S] gives the (query, key) pairs that may
    attend, padding keys already False (`vla_jax.vla.streaming_mask`), AND-ed with the rule above.
    """
    s = attention_mask.shape[1]
    q = jnp.arange(s)[:, None]
    k = jnp.arange(s)[None, :]
    allowed = k <= q
    if sliding_window is not None:
        allowed = allowed & (k > q - sliding_window)
    allowed = allowed[None]
    if block_ids is not None:
        same = (block_ids[:, :, None] == block_ids[:, None, :]) & (block_ids[:, :, None] >= 0)
        allowed = allowed | same
    pairs = attention_mask.astype(bool)
    return (allowed & (pairs if pairs.ndim == 3 else pairs[:, None, :]))[:, None]
