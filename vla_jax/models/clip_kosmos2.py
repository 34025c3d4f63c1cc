"""The CLIP + Kosmos-2 hybrid: a `CLIPVisionModel` tower in place of Kosmos-2's own, feeding
Kosmos-2's image-to-text projection and LM (the users' current model).

Kosmos-2's vision tower is itself a CLIP ViT (class token, bias-free patch conv, `pre_layrnorm`,
`post_layernorm`, quick_gelu), so the hybrid is `Kosmos2Backbone` with ``vision`` = the CLIP
tower's config, any ViT size: no new module code. What differs is where the weights come from
(`vla-jax convert-hf --src KOSMOS2_DIR --vision-src CLIP_DIR`: the tower from the CLIP folder,
everything else from Kosmos-2's; `vla_jax.convert.clip_kosmos2_table`) and, when the CLIP width
differs from Kosmos-2's vision width (1024), the projection's input layer
(`image_to_text_projection/dense`, [CLIP width, text width]) is new: freshly initialised and
trained. Images: the CLIP tower's image size, CLIP mean/std.

`to_hf_dict()` is a plain "kosmos-2" config.json (Kosmos-2 with that vision config), which HF's
`Kosmos2Model` builds and the torch runtime runs; `to_dict()` keeps our model_type
"clip-kosmos-2".
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.kosmos2 import Kosmos2Backbone, Kosmos2Config, vision_config_from_hf
from vla_jax.models.vit import ViTConfig

# openai/clip-vit-base-patch16 (HF CLIPVisionConfig defaults but patch 16): a common replacement tower.
CLIP_VIT_B16 = ViTConfig(
    hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, image_size=224, patch_size=16
)
CLIP_VISION_MODEL_TYPES = ("clip_vision_model", "clip")


@dataclasses.dataclass(frozen=True)
class ClipKosmos2Config(Kosmos2Config):
    """Defaults: CLIP ViT-B/16 tower + microsoft/kosmos-2-patch14-224's projection and LM."""

    model_type = "clip-kosmos-2"

    vision: ViTConfig = CLIP_VIT_B16

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], **knobs) -> ClipKosmos2Config:
        """From the hybrid's own "kosmos-2" config.json (what `to_hf_dict` / convert-hf write)."""
        k = Kosmos2Config.from_hf_dict(d, **knobs)
        return cls(**{f.name: getattr(k, f.name) for f in dataclasses.fields(k)})

    @classmethod
    def from_hf_dicts(cls, kosmos: dict[str, Any], clip: dict[str, Any], **knobs) -> ClipKosmos2Config:
        """From a Kosmos-2 config.json and a CLIPVisionModel (or CLIPModel) config.json."""
        if clip.get("model_type") not in CLIP_VISION_MODEL_TYPES:
            raise VLAJaxError(
                f"--vision-src config model_type is {clip.get('model_type')!r}; the hybrid needs a "
                f"CLIP vision tower ({' or '.join(CLIP_VISION_MODEL_TYPES)})"
            )
        vision = clip.get("vision_config", clip) if clip.get("model_type") == "clip" else clip
        k = Kosmos2Config.from_hf_dict(kosmos, **knobs)
        return cls(
            **{
                **{f.name: getattr(k, f.name) for f in dataclasses.fields(k)},
                "vision": vision_config_from_hf(vision, "vision_config"),
            }
        )

    @classmethod
    def tiny(cls, **overrides) -> ClipKosmos2Config:
        k = Kosmos2Config.tiny()
        base = cls(
            **{
                **{f.name: getattr(k, f.name) for f in dataclasses.fields(k)},
                "vision": dataclasses.replace(k.vision, hidden_size=48, num_attention_heads=3),
            }
        )
        return base.replace(**overrides)

    @classmethod
    def full(cls, **overrides) -> ClipKosmos2Config:
        return cls().replace(**overrides)


FAMILY = backbone_lib.Family(
    model_type="clip-kosmos-2",
    config_cls=ClipKosmos2Config,
    module_cls=Kosmos2Backbone,
    table_module="vla_jax.convert.clip_kosmos2_table",
    hf_class="Kosmos2ForConditionalGeneration",
)
