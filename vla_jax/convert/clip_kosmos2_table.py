"""THE mapping table of the CLIP + Kosmos-2 hybrid: the vision tower from a `CLIPVisionModel` (or
`CLIPModel`) folder (source "vision"), projection and LM from a Kosmos-2 folder (source "main").

When the CLIP width differs from the Kosmos-2 folder's vision width, the projection's input layer
`image_to_text_projection/dense` has no source (freshly initialised, `fresh_rows`) and Kosmos-2's
own dense is ignored, as is Kosmos-2's own vision tower and a CLIPModel's text tower.
"""

from __future__ import annotations

from vla_jax.convert import kosmos2_table
from vla_jax.convert.table import Row, vit
from vla_jax.models.clip_kosmos2 import ClipKosmos2Config

# Vision-source names: transformers 5's CLIPVisionModel has no prefix; 4.x files and CLIPModel say `vision_model.`.
VISION_RENAMES = (("vision_model.", ""),)
_DENSE = "image_to_text_projection/dense"


def mapping_table(config: ClipKosmos2Config, kosmos_vision_width: int | None = None) -> list[Row]:
    """All rows; with `kosmos_vision_width` (conversion) the dense rows are left out when widths differ."""
    rows = vit("vision_model", "", config.vision, source="vision")
    rows += kosmos2_table.projection_and_text_rows(config)
    if kosmos_vision_width is not None and kosmos_vision_width != config.vision.hidden_size:
        rows = [r for r in rows if not r.ours.startswith(_DENSE + "/")]
    return rows


def fresh_rows(config: ClipKosmos2Config, kosmos_vision_width: int) -> list[str]:
    """Our paths that conversion initialises fresh (the new projection input layer)."""
    if kosmos_vision_width == config.vision.hidden_size:
        return []
    return [f"{_DENSE}/kernel", f"{_DENSE}/bias"]


def ignored_hf_tensors(config: ClipKosmos2Config, source: str = "main") -> dict[str, str]:
    """Exact names, or prefixes (ending in '.') of tensors deliberately not loaded, per source."""
    if source == "vision":
        tower = "the hybrid uses the CLIP vision tower only"
        return {
            "embeddings.position_ids": "index buffer in older checkpoints",
            "text_model.": tower,
            "text_projection.": tower,
            "visual_projection.": tower,
            "logit_scale": tower,
        }
    return {
        **kosmos2_table.ignored_hf_tensors(config),
        "vision_model.model.": "Kosmos-2's own vision tower, replaced by the CLIP tower",
        "image_to_text_projection.dense.": "replaced by a new input layer when the CLIP width differs "
        "(loaded when it matches)",
    }
