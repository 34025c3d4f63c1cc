"""THE mapping table: Hugging Face Kosmos-2 tensor names -> our Flax parameter paths.

One row per parameter of `vla_jax.models.kosmos2.Kosmos2Backbone` (scanned layout). A row whose
HF name contains `{i}` is a per-layer tensor: the HF tensors for i = 0..n-1 are transformed and
stacked on a new axis 0 (the `nn.scan` layer axis).

Transforms:  "T"    torch Linear weight [out, in]          -> Dense kernel [in, out]
             "conv" torch Conv2d weight [out, in, kh, kw]  -> Conv kernel [kh, kw, in, out]
             None   copied as is (biases, LayerNorm weight -> scale, embeddings)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vla_jax.models.kosmos2 import Kosmos2Config


@dataclasses.dataclass(frozen=True)
class Row:
    ours: str  # '/'-joined Flax path (scanned layout)
    hf: str  # HF tensor name, with `{i}` for per-layer tensors
    transform: str | None = None
    num_layers: int = 0  # > 0 for stacked rows

    def hf_names(self) -> list[str]:
        return [self.hf.format(i=i) for i in range(self.num_layers)] if self.num_layers else [self.hf]


# HF tensors we deliberately do not load, and why.
IGNORED_HF_TENSORS = {
    "text_model.lm_head.weight": "tied to text_model.model.embed_tokens.weight (tie_word_embeddings)",
    "vision_model.model.embeddings.position_ids": "non-persistent index buffer in older checkpoints",
    "text_model.model.embed_positions.weights": "sinusoidal table, recomputed on the fly",
}


def _linear(ours: str, hf: str, n: int = 0) -> list[Row]:
    return [Row(f"{ours}/kernel", f"{hf}.weight", "T", n), Row(f"{ours}/bias", f"{hf}.bias", None, n)]


def _norm(ours: str, hf: str, n: int = 0) -> list[Row]:
    return [Row(f"{ours}/scale", f"{hf}.weight", None, n), Row(f"{ours}/bias", f"{hf}.bias", None, n)]


def _attention(ours: str, hf: str, n: int = 0) -> list[Row]:
    rows: list[Row] = []
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        rows += _linear(f"{ours}/{proj}", f"{hf}.{proj}", n)
    return rows


def mapping_table(config: Kosmos2Config) -> list[Row]:
    nv, nt = config.vision.num_hidden_layers, config.text.layers
    v, vl = "vision_model.model", "vision_model.model.encoder.layers.{i}"
    t, tl = "text_model.model", "text_model.model.layers.{i}"
    rows = [
        Row("vision_model/patch_embedding/kernel", f"{v}.embeddings.patch_embedding.weight", "conv"),
        Row("vision_model/class_embedding", f"{v}.embeddings.class_embedding"),
        Row("vision_model/position_embedding/embedding", f"{v}.embeddings.position_embedding.weight"),
        *_norm("vision_model/pre_layrnorm", f"{v}.pre_layrnorm"),
        *_norm("vision_model/encoder/layers/layer_norm1", f"{vl}.layer_norm1", nv),
        *_attention("vision_model/encoder/layers/self_attn", f"{vl}.self_attn", nv),
        *_norm("vision_model/encoder/layers/layer_norm2", f"{vl}.layer_norm2", nv),
        *_linear("vision_model/encoder/layers/fc1", f"{vl}.mlp.fc1", nv),
        *_linear("vision_model/encoder/layers/fc2", f"{vl}.mlp.fc2", nv),
        *_norm("vision_model/post_layernorm", f"{v}.post_layernorm"),
        *_linear("image_to_text_projection/dense", "image_to_text_projection.dense"),
        Row("image_to_text_projection/latent_query", "image_to_text_projection.latent_query"),
        *_attention("image_to_text_projection/x_attn", "image_to_text_projection.x_attn"),
        Row("text_model/embed_tokens/embedding", f"{t}.embed_tokens.weight"),
        *_norm("text_model/decoder/layers/self_attn_layer_norm", f"{tl}.self_attn_layer_norm", nt),
        *_attention("text_model/decoder/layers/self_attn", f"{tl}.self_attn", nt),
        *_norm("text_model/decoder/layers/self_attn/inner_attn_ln", f"{tl}.self_attn.inner_attn_ln", nt),
        *_norm("text_model/decoder/layers/final_layer_norm", f"{tl}.final_layer_norm", nt),
        *_linear("text_model/decoder/layers/ffn/fc1", f"{tl}.ffn.fc1", nt),
        *_norm("text_model/decoder/layers/ffn/ffn_layernorm", f"{tl}.ffn.ffn_layernorm", nt),
        *_linear("text_model/decoder/layers/ffn/fc2", f"{tl}.ffn.fc2", nt),
        *_norm("text_model/layer_norm", f"{t}.layer_norm"),
    ]
    return rows


def to_ours(array: np.ndarray, transform: str | None) -> np.ndarray:
    if transform == "T":
        return array.T
    if transform == "conv":
        return array.transpose(2, 3, 1, 0)
    return array


def hf_shape(our_layer_shape: tuple[int, ...], transform: str | None) -> tuple[int, ...]:
    """The HF shape that `to_ours` turns into `our_layer_shape` (per layer, no stack axis)."""
    if transform == "T":
        return tuple(reversed(our_layer_shape))
    if transform == "conv":
        kh, kw, cin, cout = our_layer_shape
        return (cout, cin, kh, kw)
    return tuple(our_layer_shape)
