"""THE mapping table: Hugging Face `IdeficsForVisionText2Text` tensors -> our Flax paths.

Names as transformers 5 holds them (`model.vision_model...`, `model.perceiver_resampler.blocks.{i}.{0,1}...`,
`model.embed_tokens.weight` + `.additional_embedding.weight`, `model.layers.{i}...`,
`model.gated_cross_attn_layers.{g}...`, `model.norm`, `lm_head.weight` + `lm_head.additional_fc.weight`);
the released files use the same names. Our LM is scanned over cross-attention groups
(`vla_jax.models.idefics`): group g's `self_j` is HF block `g * cross_layer_interval + j`.
"""

from __future__ import annotations

import dataclasses

from vla_jax.convert.table import Row, layer_norm, linear, rms_norm, vit
from vla_jax.models.idefics_config import IdeficsConfig

LEGACY_RENAMES: tuple[tuple[str, str], ...] = ()
LM = "text_model/layers"


@dataclasses.dataclass(frozen=True)
class StridedRow(Row):
    """A stacked row whose stack index g reads HF layer `first + stride * g`."""

    first: int = 0
    stride: int = 1

    def hf_names(self) -> list[str]:
        return [self.hf.format(i=self.first + self.stride * g) for g in range(self.num_layers)]


def ignored_hf_tensors(config: IdeficsConfig, source: str = "main") -> dict[str, str]:
    ignored = {"model.vision_model.embeddings.position_ids": "index buffer in older checkpoints"}
    if config.text.tie_word_embeddings:
        ignored["lm_head.weight"] = "tied to model.embed_tokens.weight (tie_word_embeddings)"
        ignored["lm_head.additional_fc.weight"] = "tied to model.embed_tokens.additional_embedding.weight"
    return ignored


def _projections(ours: str, hf: str, names: tuple[str, ...], n: int) -> list[Row]:
    """Bias-free linears `ours/<name>` <- `hf.<name>` (every IDEFICS projection outside the vision tower)."""
    return [r for p in names for r in linear(f"{ours}/{p}", f"{hf}.{p}", n, False)]


QKVO = ("q_proj", "k_proj", "v_proj", "o_proj")


def _perceiver(config: IdeficsConfig) -> list[Row]:
    n, ours, hf = config.perceiver.resampler_depth, "perceiver_resampler", "model.perceiver_resampler"
    a, m = f"{ours}/layers/attn", f"{ours}/layers/mlp"
    block = f"{hf}.blocks.{{i}}"
    rows = [
        Row(f"{ours}/latents", f"{hf}.latents"),
        *layer_norm(f"{a}/context_layer_norm", f"{block}.0.context_layer_norm", n),
        *layer_norm(f"{a}/latents_layer_norm", f"{block}.0.latents_layer_norm", n),
        *_projections(a, f"{block}.0", ("q_proj", "k_proj", "v_proj", "output_proj"), n),
        *layer_norm(f"{m}/ln", f"{block}.1.ln", n),
        *_projections(m, f"{block}.1", ("fc", "c_proj"), n),
        *layer_norm(f"{ours}/layer_norm", f"{hf}.layer_norm"),
    ]
    if config.perceiver.qk_layer_norms_perceiver:
        rows += [*layer_norm(f"{a}/q_layer_norm", f"{block}.0.q_layer_norm", n)]
        rows += [*layer_norm(f"{a}/k_layer_norm", f"{block}.0.k_layer_norm", n)]
    return rows


def _mlp(ours: str, hf: str, n: int) -> list[Row]:
    return _projections(ours, hf, ("gate_proj", "up_proj", "down_proj"), n)


def _cross(config: IdeficsConfig) -> list[Row]:
    g, ours, hf = config.num_cross_layers, f"{LM}/cross", "model.gated_cross_attn_layers.{i}"
    rows = [
        *rms_norm(f"{ours}/input_layernorm", f"{hf}.input_layernorm", g),
        *_projections(ours, f"{hf}.cross_attn", QKVO, g),
        *rms_norm(f"{ours}/post_attention_layernorm", f"{hf}.post_attention_layernorm", g),
        *_mlp(f"{ours}/mlp", f"{hf}.mlp", g),
        Row(f"{ours}/alpha_cross_attn", f"{hf}.alpha_cross_attn", None, g),
        Row(f"{ours}/alpha_dense", f"{hf}.alpha_dense", None, g),
    ]
    if config.qk_layer_norms:
        rows += rms_norm(f"{ours}/q_layer_norm", f"{hf}.cross_attn.q_layer_norm", g)
        rows += rms_norm(f"{ours}/k_layer_norm", f"{hf}.cross_attn.k_layer_norm", g)
    return rows


def _blocks(config: IdeficsConfig) -> list[Row]:
    """The LLaMA blocks: group g's `self_j` = HF `model.layers.{g * interval + j}`."""
    g, k, hf = config.num_cross_layers, config.cross_layer_interval, "model.layers.{i}"
    rows = []
    for j in range(k):
        ours = f"{LM}/self_{j}"
        per_block = [
            *rms_norm(f"{ours}/input_layernorm", f"{hf}.input_layernorm", g),
            *_projections(f"{ours}/self_attn", f"{hf}.self_attn", QKVO, g),
            *rms_norm(f"{ours}/post_attention_layernorm", f"{hf}.post_attention_layernorm", g),
            *_mlp(f"{ours}/mlp", f"{hf}.mlp", g),
        ]
        rows += [StridedRow(**dataclasses.asdict(r), first=j, stride=k) for r in per_block]
    return rows


def mapping_table(config: IdeficsConfig) -> list[Row]:
    t, extra = config.text, config.additional_vocab_size
    rows = [*vit("vision_model", "model.vision_model", config.vision)]
    if config.use_resampler:
        rows += _perceiver(config)
    rows.append(Row("text_model/embed_tokens/embedding", "model.embed_tokens.weight"))
    if extra:
        rows.append(Row("text_model/additional_embedding/embedding", "model.embed_tokens.additional_embedding.weight"))
    rows += [*_cross(config), *_blocks(config), *rms_norm("text_model/norm", "model.norm")]
    if not t.tie_word_embeddings:
        rows += linear("text_model/lm_head", "lm_head", bias=False)
        if extra:
            rows += linear("text_model/additional_fc", "lm_head.additional_fc", bias=False)
    return rows
