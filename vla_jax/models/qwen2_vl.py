"""Qwen2-VL in Flax linen, number for number HF's `Qwen2VLForConditionalGeneration` on fixed-size frames.

Qwen2.5-VL's code (`vla_jax.models.qwen2_5_vl`) with the `qwen2_vl` vision variant of
`vla_jax.models.qwen_vit` (LayerNorm blocks with an fc1 / quick_gelu / fc2 MLP, every block full
attention, LayerNorm merger); the same Qwen2 LM, the same 3-D multimodal positions (HF's
`get_rope_index` is the same rule for images), the same image tokens per frame ((side / 28)^2) and
CLIP mean/std. HF config keys differ in the vision part: `embed_dim` is the tower width,
`hidden_size` the LM width, `mlp_ratio` the MLP factor.

No released configuration is transcribed (`full()` refuses): this project could not read the
published Qwen2-VL config.json files, so none is stated here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.qwen2_5_vl import Qwen2_5_VLBackbone, Qwen2_5_VLConfig
from vla_jax.models.qwen_vit import QwenViTConfig


@dataclasses.dataclass(frozen=True)
class Qwen2VLConfig(Qwen2_5_VLConfig):
    """Qwen2.5-VL's config with the `qwen2_vl` vision variant (no default released size: see the module docstring)."""

    model_type = "qwen2_vl"

    vision: QwenViTConfig = dataclasses.field(
        default_factory=lambda: dataclasses.replace(
            Qwen2_5_VLConfig().vision, variant="qwen2_vl", intermediate_size=5120, hidden_act="quick_gelu"
        )
    )

    def __post_init__(self):
        super().__post_init__()
        if self.vision.variant != "qwen2_vl":
            raise VLAJaxError(f"qwen2_vl: the vision tower variant is 'qwen2_vl', got {self.vision.variant!r}")

    @classmethod
    def vision_from_hf(cls, d: dict[str, Any], image_size: int) -> QwenViTConfig:
        return QwenViTConfig.from_hf_qwen2_vl_dict(d, image_size, "vision_config")

    def to_hf_dict(self) -> dict[str, Any]:
        d = super().to_hf_dict()
        return {
            **d,
            "model_type": self.model_type,
            "architectures": ["Qwen2VLForConditionalGeneration"],
            "text_config": {**d["text_config"], "model_type": "qwen2_vl_text"},
        }

    @classmethod
    def tiny(cls, **overrides) -> Qwen2VLConfig:
        base = Qwen2_5_VLConfig.tiny()
        vision = dataclasses.replace(base.vision, variant="qwen2_vl", hidden_act="quick_gelu", intermediate_size=64)
        return cls(vision=vision, text=base.text).replace(**overrides)

    @classmethod
    def full(cls, size: str = "", **overrides) -> Qwen2VLConfig:
        raise VLAJaxError(
            "no released Qwen2-VL config is transcribed here; convert a checkpoint (vla-jax convert-hf) or build "
            "Qwen2VLConfig(vision=..., text=...) from its config.json"
        )


class Qwen2VLBackbone(Qwen2_5_VLBackbone):
    config: Qwen2VLConfig


FAMILY = backbone_lib.Family(
    model_type="qwen2_vl",
    config_cls=Qwen2VLConfig,
    module_cls=Qwen2VLBackbone,
    table_module="vla_jax.convert.qwen2_vl_table",
    hf_class="Qwen2VLForConditionalGeneration",
)
