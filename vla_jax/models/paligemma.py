"""PaliGemma / PaliGemma 2 in Flax linen, number for number HF's `PaliGemmaForConditionalGeneration`.

SigLIP ViT (`vision_model`, `vla_jax.models.vit` SigLIP variant, no pooling head) -> one linear
`multi_modal_projector` to the LM width -> Gemma (PaliGemma 1) or Gemma 2 (PaliGemma 2) decoder
(`text_model`, `vla_jax.models.decoder`). Images are normalised with mean = std = 0.5; positions
are 1-indexed; attention is prefix-LM: the image and the instruction attend to each other
bidirectionally, the tail (action token / action tokens) causally (HF's `token_type_ids`
0 = prefix, 1 = suffix; our ``block_ids``).

Interface (`vla_jax.models.backbone`): `encode_images` = HF `get_image_features(px).pooler_output`
(the projector output, not rescaled), `embed_tokens` = HF's scaled embedding (`E[ids] * sqrt(D)`),
so both live in the space the Gemma decoder takes as `inputs_embeds`.

Where the action token goes, compared with RoboVLMs' `RoboPaligemma` (robovlms/model/backbone/
robopaligemma.py + base_backbone.py), which uses HF's class with `inputs_embeds`:

* Image: both insert the image after BOS (`image_insert_index=1`); HF's own prompt puts it
  first (`<image>*256 <bos> prompt`), so set ``image_insert_index=0`` for HF's layout.
* Action token: RoboVLMs inserts it before the LAST text token (the slot it assumes is EOS);
  we append it after the last valid (unpadded) token. Without an EOS in the instruction (the
  Gemma tokenizer adds none) the two differ by that one slot.
* Attention: RoboVLMs passes no `token_type_ids`, so with the transformers of its time
  (4.4x, `_update_causal_mask` outside training) the whole sequence, action token included,
  attends bidirectionally. We use PaliGemma's prefix-LM: prefix bidirectional, the action
  token(s) causal, which the discrete structure needs (no peeking at the target tokens).
* Image scale: RoboVLMs divides the projector output by sqrt(config.hidden_size) and lets
  Gemma multiply inputs_embeds by sqrt(text hidden): a net 1 for PaliGemma 1 (2048 / 2048) but
  sqrt(2304 / 2048) for PaliGemma 2. We follow current HF: the projector output unscaled.
* Image statistics: RoboVLMs' PaliGemma config normalises with CLIP's mean/std; we use
  SigLIP's 0.5 / 0.5, what PaliGemma was trained with.
* The action token itself is added to the (already scaled) embeddings as is, zero-initialised.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.decoder import DecoderConfig, DecoderLM, DecoderVLMBackbone
from vla_jax.models.vit import VisionTransformer, ViTConfig
from vla_runtime.policy_io import SIGLIP_MEAN, SIGLIP_STD

# SigLIP So400m/14 at 224 px, PaliGemma's tower.
SIGLIP_SO400M_224 = ViTConfig(
    hidden_size=1152,
    intermediate_size=4304,
    num_hidden_layers=27,
    num_attention_heads=16,
    image_size=224,
    patch_size=14,
    layer_norm_eps=1e-6,
    hidden_act="gelu_pytorch_tanh",
    variant="siglip",
)


@dataclasses.dataclass(frozen=True)
class PaliGemmaConfig(backbone_lib.BackboneConfig):
    """Defaults: google/paligemma2-3b-pt-224 (RoboVLMs' PaliGemma)."""

    model_type = "paligemma"
    attention = "prefix_lm"
    image_mean = SIGLIP_MEAN
    image_std = SIGLIP_STD

    vision: ViTConfig = SIGLIP_SO400M_224
    text: DecoderConfig = DecoderConfig()
    image_token_id: int = 257152  # HF's placeholder id; kept for the config round trip only
    dtype: str = "float32"
    scan_layers: bool = True
    remat: bool = False

    def __post_init__(self):
        if self.vision.variant != "siglip":
            raise VLAJaxError(f"paligemma: the vision tower is SigLIP (variant 'siglip'), got {self.vision.variant!r}")
        if self.text.variant not in ("gemma", "gemma2"):
            raise VLAJaxError(f"paligemma: the text model is Gemma or Gemma 2, got {self.text.variant!r}")

    @property
    def image_tokens(self) -> int:
        return self.vision.num_patches

    @property
    def first_position(self) -> int:
        return 1  # PaliGemma's positions are 1-indexed

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], **knobs) -> PaliGemmaConfig:
        """From a PaliGemma config.json dict as transformers' `PaliGemmaConfig(...).to_dict()` fills it."""
        if d.get("model_type") != "paligemma":
            raise VLAJaxError(f"config model_type is {d.get('model_type')!r}, expected 'paligemma'")
        vision = dict(d.get("vision_config") or {})
        if vision.get("vision_use_head"):
            raise VLAJaxError("vision_config.vision_use_head=true is not supported (PaliGemma uses the patch tokens)")
        text = DecoderConfig.from_hf_dict(d.get("text_config") or {}, "text_config")
        proj = vision.get("projection_dim", d.get("projection_dim"))
        if proj is not None and int(proj) != text.hidden_size:
            raise VLAJaxError(
                f"vision_config.projection_dim={proj} differs from text_config.hidden_size="
                f"{text.hidden_size}; the projector must map to the LM width"
            )
        tie = d.get("tie_word_embeddings", True)  # the composite model's flag decides (HF `tie_weights`)
        return cls(
            vision=ViTConfig.from_hf_dict(vision, "siglip", "vision_config"),
            text=dataclasses.replace(text, tie_word_embeddings=bool(tie)),
            image_token_id=int(d.get("image_token_id", d.get("image_token_index", 257152))),
            **knobs,
        )

    def to_hf_dict(self) -> dict[str, Any]:
        text = self.text.to_hf_dict()
        return {
            "model_type": "paligemma",
            "architectures": ["PaliGemmaForConditionalGeneration"],
            "image_token_index": self.image_token_id,
            "projection_dim": self.text.hidden_size,
            "hidden_size": self.text.hidden_size,
            "vocab_size": self.text.vocab_size,
            "tie_word_embeddings": self.text.tie_word_embeddings,
            "vision_config": {
                "model_type": "siglip_vision_model",
                **self.vision.to_hf_dict(),
                "projection_dim": self.text.hidden_size,
                "vision_use_head": False,
            },
            "text_config": text,
        }

    @classmethod
    def tiny(cls, text_variant: str = "gemma2", **overrides) -> PaliGemmaConfig:
        """A few-KB model for tests; vocab 1024 leaves room for 256 action bins at the end."""
        text = DecoderConfig(
            variant=text_variant,
            vocab_size=1024,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=512,
            query_pre_attn_scalar=8,
            sliding_window=16,
        )
        if text_variant != "gemma2":
            text = dataclasses.replace(
                text,
                query_pre_attn_scalar=None,
                attn_logit_softcapping=None,
                final_logit_softcapping=None,
                sliding_window=None,
                layer_types=None,
            )
        vision = ViTConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            layer_norm_eps=1e-6,
            hidden_act="gelu_pytorch_tanh",
            variant="siglip",
        )
        return cls(vision=vision, text=text).replace(**overrides)

    @classmethod
    def full(cls, **overrides) -> PaliGemmaConfig:
        """google/paligemma2-3b-pt-224 (config values transcribed in docs/backbones.md)."""
        return cls().replace(**overrides)


class PaliGemmaBackbone(DecoderVLMBackbone):
    config: PaliGemmaConfig

    def setup(self):
        cfg, dt = self.config, self.config.compute_dtype
        self.vision_model = VisionTransformer(cfg.vision, dt, cfg.scan_layers, cfg.remat)
        self.multi_modal_projector = nn.Dense(cfg.text.hidden_size, dtype=dt, param_dtype=jnp.float32)
        self.text_model = DecoderLM(cfg.text, dt, cfg.scan_layers, cfg.remat)

    def project(self, features):
        return self.multi_modal_projector(features)


FAMILY = backbone_lib.Family(
    model_type="paligemma",
    config_cls=PaliGemmaConfig,
    module_cls=PaliGemmaBackbone,
    table_module="vla_jax.convert.paligemma_table",
    hf_class="PaliGemmaForConditionalGeneration",
)
