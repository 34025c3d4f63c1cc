"""THE mapping table: Hugging Face `PaliGemmaForConditionalGeneration` tensors -> our Flax paths.

Names as the transformers 5 model holds them (`model.vision_tower.embeddings...`,
`model.multi_modal_projector...`, `model.language_model...`, `lm_head`). Files name them
differently: transformers 4.x (the released google/paligemma* checkpoints) wrote
`vision_tower.vision_model...`, `language_model.model...`, `language_model.lm_head`, and
transformers 5's save_pretrained writes `vision_tower...`, `language_model.model...`;
`LEGACY_RENAMES` maps both (first matching prefix wins), as transformers does when loading.
"""

from __future__ import annotations

from vla_jax.convert.table import Row, decoder, linear, vit
from vla_jax.models.paligemma import PaliGemmaConfig

LEGACY_RENAMES = (
    ("language_model.lm_head.", "lm_head."),
    ("language_model.model.", "model.language_model."),
    ("vision_tower.vision_model.", "model.vision_tower."),
    ("vision_tower.", "model.vision_tower."),
    ("multi_modal_projector.", "model.multi_modal_projector."),
)


def ignored_hf_tensors(config: PaliGemmaConfig, source: str = "main") -> dict[str, str]:
    ignored = {"model.vision_tower.embeddings.position_ids": "index buffer in older checkpoints"}
    if config.text.tie_word_embeddings:
        ignored["lm_head.weight"] = "tied to model.language_model.embed_tokens.weight (tie_word_embeddings)"
    return ignored


def mapping_table(config: PaliGemmaConfig) -> list[Row]:
    return [
        *vit("vision_model", "model.vision_tower", config.vision),
        *linear("multi_modal_projector", "model.multi_modal_projector.linear"),
        *decoder("text_model", "model.language_model", config.text, lm_head="lm_head"),
    ]
