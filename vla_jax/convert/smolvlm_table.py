"""THE mapping table: Hugging Face `SmolVLMForConditionalGeneration` tensors -> our Flax paths."""

from __future__ import annotations

from vla_jax.convert.table import Row, decoder, vit
from vla_jax.models.smolvlm import SmolVLMConfig

LEGACY_RENAMES = ()


def ignored_hf_tensors(config: SmolVLMConfig, source: str = "main") -> dict[str, str]:
    if config.text.tie_word_embeddings:
        return {"lm_head.weight": "tied to model.text_model.embed_tokens.weight (tie_word_embeddings)"}
    return {}


def mapping_table(config: SmolVLMConfig) -> list[Row]:
    return [
        *vit("vision_model", "model.vision_model", config.vision),
        Row("connector/proj/kernel", "model.connector.modality_projection.proj.weight", "T"),
        *decoder("text_model", "model.text_model", config.text, lm_head="lm_head"),
    ]
