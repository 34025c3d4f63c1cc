"""THE mapping table: Hugging Face `Qwen2_5_VLForConditionalGeneration` (and `Qwen2VLForConditionalGeneration`:
the same module names, its vision variant's rows) tensors -> our Flax paths.

Names as the transformers 5 model holds them (`model.visual...`, `model.language_model...`,
`lm_head`). The released Qwen/Qwen2.5-VL-* files were written by transformers 4.4x as `visual...`
and `model.layers...` / `model.embed_tokens` / `model.norm`; `LEGACY_RENAMES` maps those (first
matching prefix wins), as transformers does when loading them.
"""

from __future__ import annotations

from vla_jax.convert.table import Row, decoder, layer_norm, linear, rms_norm
from vla_jax.models.qwen2_5_vl import Qwen2_5_VLConfig

LEGACY_RENAMES = (
    ("model.visual.", "model.visual."),
    ("model.language_model.", "model.language_model."),
    ("visual.", "model.visual."),
    ("model.", "model.language_model."),
)


def ignored_hf_tensors(config: Qwen2_5_VLConfig, source: str = "main") -> dict[str, str]:
    if config.text.tie_word_embeddings:
        return {"lm_head.weight": "tied to model.language_model.embed_tokens.weight (tie_word_embeddings)"}
    return {}


def vision_rows(ours: str, hf: str, config) -> list[Row]:
    """Rows of `vla_jax.models.qwen_vit.QwenVisionTransformer` under HF prefix `hf` (the `visual` module):
    Qwen2.5-VL's RMSNorms + SwiGLU, or Qwen2-VL's LayerNorms + fc1/fc2 (same names otherwise)."""
    n, blk, lay = config.num_hidden_layers, f"{hf}.blocks.{{i}}", f"{ours}/blocks/layers"
    norm = rms_norm if config.windowed else layer_norm
    mlp = ("gate_proj", "up_proj", "down_proj") if config.windowed else ("fc1", "fc2")
    return [
        Row(f"{ours}/patch_embed", f"{hf}.patch_embed.proj.weight", "conv3d"),
        *norm(f"{lay}/norm1", f"{blk}.norm1", n),
        *linear(f"{lay}/attn/qkv", f"{blk}.attn.qkv", n),
        *linear(f"{lay}/attn/proj", f"{blk}.attn.proj", n),
        *norm(f"{lay}/norm2", f"{blk}.norm2", n),
        *[r for proj in mlp for r in linear(f"{lay}/{proj}", f"{blk}.mlp.{proj}", n)],
        *norm(f"{ours}/merger/ln_q", f"{hf}.merger.ln_q"),
        *linear(f"{ours}/merger/mlp_0", f"{hf}.merger.mlp.0"),
        *linear(f"{ours}/merger/mlp_2", f"{hf}.merger.mlp.2"),
    ]


def mapping_table(config: Qwen2_5_VLConfig) -> list[Row]:
    return [
        *vision_rows("vision_model", "model.visual", config.vision),
        *decoder("text_model", "model.language_model", config.text, lm_head="lm_head"),
    ]
