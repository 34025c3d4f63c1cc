"""THE mapping table: Hugging Face `Kosmos2ForConditionalGeneration` tensors -> our Flax parameter paths.

One row per parameter of `vla_jax.models.kosmos2.Kosmos2Backbone` (scanned layout; rows and
transforms as `vla_jax.convert.table`).
"""

from __future__ import annotations

from vla_jax.convert.table import Row, attention, hf_shape, layer_norm, linear, to_ours, vit  # noqa: F401 (re-exported)
from vla_jax.models.kosmos2 import Kosmos2Config

# HF tensors we deliberately do not load, and why.
IGNORED_HF_TENSORS = {
    "text_model.lm_head.weight": "tied to text_model.model.embed_tokens.weight (tie_word_embeddings)",
    "vision_model.model.embeddings.position_ids": "non-persistent index buffer in older checkpoints",
    "text_model.model.embed_positions.weights": "sinusoidal table, recomputed on the fly",
}


LEGACY_RENAMES = ()


def ignored_hf_tensors(config: Kosmos2Config, source: str = "main") -> dict[str, str]:
    return IGNORED_HF_TENSORS


def projection_and_text_rows(config: Kosmos2Config) -> list[Row]:
    """Everything after the vision tower: image-to-text projection and the text decoder."""
    nt = config.text.layers
    t, tl = "text_model.model", "text_model.model.layers.{i}"
    d = "text_model/decoder/layers"
    return [
        *linear("image_to_text_projection/dense", "image_to_text_projection.dense"),
        Row("image_to_text_projection/latent_query", "image_to_text_projection.latent_query"),
        *attention("image_to_text_projection/x_attn", "image_to_text_projection.x_attn"),
        Row("text_model/embed_tokens/embedding", f"{t}.embed_tokens.weight"),
        *layer_norm(f"{d}/self_attn_layer_norm", f"{tl}.self_attn_layer_norm", nt),
        *attention(f"{d}/self_attn", f"{tl}.self_attn", nt),
        *layer_norm(f"{d}/self_attn/inner_attn_ln", f"{tl}.self_attn.inner_attn_ln", nt),
        *layer_norm(f"{d}/final_layer_norm", f"{tl}.final_layer_norm", nt),
        *linear(f"{d}/ffn/fc1", f"{tl}.ffn.fc1", nt),
        *layer_norm(f"{d}/ffn/ffn_layernorm", f"{tl}.ffn.ffn_layernorm", nt),
        *linear(f"{d}/ffn/fc2", f"{tl}.ffn.fc2", nt),
        *layer_norm("text_model/layer_norm", f"{t}.layer_norm"),
    ]


def mapping_table(config: Kosmos2Config) -> list[Row]:
    return vit("vision_model", "vision_model.model", config.vision) + projection_and_text_rows(config)
