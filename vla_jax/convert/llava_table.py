"""THE mapping table: Hugging Face `LlavaForConditionalGeneration` tensors -> our Flax paths.

Names as the transformers 5 model holds them (`model.vision_tower.embeddings...`: v5's
`CLIPVisionModel` has no `vision_model` level; `model.multi_modal_projector.linear_{1,2}`,
`model.language_model...`, `lm_head`). Files name them differently: the released llava-hf files
(transformers 4.x) hold `vision_tower.vision_model...`, `multi_modal_projector...`,
`language_model.model...`, `language_model.lm_head`, and transformers 5's save_pretrained writes
`vision_tower...`, `language_model.model...`, `language_model.lm_head`; `LEGACY_RENAMES` maps
both (first matching prefix wins), as transformers does when loading.

The CLIP tower is split at the feature layer (`vla_jax.models.llava`): HF layers
0 .. feature_depth-1 are `vision_model/encoder/layers`, the unused rest `vision_model/tail/layers`.
"""

from __future__ import annotations

import dataclasses

from vla_jax.convert.table import Row, decoder, linear, vit
from vla_jax.models.llava import LlavaConfig

LEGACY_RENAMES = (
    ("language_model.lm_head.", "lm_head."),
    ("language_model.model.", "model.language_model."),
    ("vision_tower.vision_model.", "model.vision_tower."),
    ("vision_tower.", "model.vision_tower."),
    ("multi_modal_projector.", "model.multi_modal_projector."),
)
VISION = "model.vision_tower"
ENCODER = "vision_model/encoder/layers"


@dataclasses.dataclass(frozen=True)
class OffsetRow(Row):
    """A stacked row whose HF layer numbers start at `first` (our stack index 0 = HF layer `first`)."""

    first: int = 0

    def hf_names(self) -> list[str]:
        return [self.hf.format(i=self.first + i) for i in range(self.num_layers)]


def ignored_hf_tensors(config: LlavaConfig, source: str = "main") -> dict[str, str]:
    ignored = {f"{VISION}.embeddings.position_ids": "index buffer in older checkpoints"}
    if config.text.tie_word_embeddings:
        ignored["lm_head.weight"] = "tied to model.language_model.embed_tokens.weight (tie_word_embeddings)"
    return ignored


def _tail_rows(config: LlavaConfig) -> list[Row]:
    """The CLIP layers past the feature layer (in the checkpoint, unused by LLaVA): the full-depth tower's
    per-layer rows, renamed to `vision_model/tail/layers`, numbered from the feature depth."""
    depth, n = config.feature_depth, config.vision.num_hidden_layers
    return [
        OffsetRow(
            **{
                **dataclasses.asdict(r),
                "ours": r.ours.replace(ENCODER, "vision_model/tail/layers"),
                "num_layers": n - depth,
            },
            first=depth,
        )
        for r in vit("vision_model", VISION, config.vision)
        if r.num_layers and depth < n
    ]


def mapping_table(config: LlavaConfig) -> list[Row]:
    used = dataclasses.replace(config.vision, num_hidden_layers=config.feature_depth)
    bias = config.multimodal_projector_bias
    return [
        *vit("vision_model", VISION, used),
        *_tail_rows(config),
        *linear("multi_modal_projector/linear_1", "model.multi_modal_projector.linear_1", bias=bias),
        *linear("multi_modal_projector/linear_2", "model.multi_modal_projector.linear_2", bias=bias),
        *decoder("text_model", "model.language_model", config.text, lm_head="lm_head"),
    ]
