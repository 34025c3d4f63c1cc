"""SmolVLM in Flax linen, number for number HF's `SmolVLMForConditionalGeneration` on fixed-size frames.

SigLIP-style ViT (`vision_model`, the `vla_jax.models.vit` SigLIP variant) -> pixel shuffle by
`scale_factor` (s x s neighbouring patches concatenated into one token: (grid / s)^2 tokens of
width s^2 * vision width) -> `connector` (one bias-free linear to the LM width) -> Llama-style
decoder (`text_model`, `vla_jax.models.decoder` llama variant). Causal attention, 0-indexed
positions, images normalised with mean = std = 0.5.

Robot frames are one fixed-size image each (the config's `vision_config.image_size`, 512 px for
256M / 500M): no image splitting into tiles, no padding mask, so the vision tower's NaViT
position ids are the plain grid (see `vla_jax.models.vit`). HF's processor wraps an un-split
image as `<fake_token_around_image><global-img><image>*64<fake_token_around_image>`; with
`VLAConfig.image_bracket_tokens` the outer pair can be reproduced.

Interface (`vla_jax.models.backbone`): `encode_images` = HF `model.connector(model.vision_model(px)
.last_hidden_state)`, `embed_tokens` = HF `get_input_embeddings()(ids)` (no scale).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.decoder import DecoderConfig, DecoderLM, DecoderVLMBackbone
from vla_jax.models.vit import VisionTransformer, ViTConfig
from vla_runtime.policy_io import SIGLIP_MEAN, SIGLIP_STD

# SigLIP base patch16 at 512 px: the tower of SmolVLM 256M / 500M.
SIGLIP_B16_512 = ViTConfig(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    image_size=512,
    patch_size=16,
    layer_norm_eps=1e-6,
    hidden_act="gelu_pytorch_tanh",
    variant="siglip",
)
# SmolLM2-135M as SmolVLM2-256M's text model (vocab 49280 with the image tokens, untied head).
SMOLLM2_135M = DecoderConfig(
    variant="llama",
    vocab_size=49280,
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    head_dim=64,
    rms_norm_eps=1e-5,
    rope_theta=100000.0,
    hidden_act="silu",
    max_position_embeddings=8192,
    tie_word_embeddings=False,
    query_pre_attn_scalar=None,
    attn_logit_softcapping=None,
    final_logit_softcapping=None,
    sliding_window=None,
)
# SmolLM2-360M as SmolVLM2-500M's text model.
SMOLLM2_360M = dataclasses.replace(
    SMOLLM2_135M,
    hidden_size=960,
    intermediate_size=2560,
    num_hidden_layers=32,
    num_attention_heads=15,
    num_key_value_heads=5,
)
RELEASED = {"256M": (SIGLIP_B16_512, SMOLLM2_135M), "500M": (SIGLIP_B16_512, SMOLLM2_360M)}


@dataclasses.dataclass(frozen=True)
class SmolVLMConfig(backbone_lib.BackboneConfig):
    """Defaults: HuggingFaceTB/SmolVLM2-256M-Video-Instruct (the Jetson-size choice)."""

    model_type = "smolvlm"
    image_mean = SIGLIP_MEAN
    image_std = SIGLIP_STD

    vision: ViTConfig = SIGLIP_B16_512
    text: DecoderConfig = SMOLLM2_135M
    scale_factor: int = 4
    image_token_id: int = 49190  # HF's placeholder id; kept for the config round trip only
    dtype: str = "float32"
    scan_layers: bool = True
    remat: bool = False

    def __post_init__(self):
        if self.vision.variant != "siglip":
            raise VLAJaxError(f"smolvlm: the vision tower is SigLIP (variant 'siglip'), got {self.vision.variant!r}")
        if self.text.variant != "llama":
            raise VLAJaxError(f"smolvlm: the text model is Llama-style, got {self.text.variant!r}")
        if self.scale_factor < 1 or self.vision.grid % self.scale_factor:
            raise VLAJaxError(
                f"smolvlm: scale_factor={self.scale_factor} must divide the patch grid "
                f"{self.vision.grid} (image_size {self.vision.image_size} / patch_size "
                f"{self.vision.patch_size})"
            )

    @property
    def image_tokens(self) -> int:
        return self.vision.num_patches // self.scale_factor**2

    @property
    def first_position(self) -> int:
        return 0

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], **knobs) -> SmolVLMConfig:
        """From a SmolVLM config.json dict as transformers' `SmolVLMConfig(...).to_dict()` fills it."""
        if d.get("model_type") != "smolvlm":
            raise VLAJaxError(f"config model_type is {d.get('model_type')!r}, expected 'smolvlm'")
        text = DecoderConfig.from_hf_dict(d.get("text_config") or {}, "text_config")
        return cls(
            vision=ViTConfig.from_hf_dict(d.get("vision_config") or {}, "siglip", "vision_config"),
            text=dataclasses.replace(text, tie_word_embeddings=bool(d.get("tie_word_embeddings", False))),
            scale_factor=int(d.get("scale_factor", 2)),
            image_token_id=int(d.get("image_token_id", 128257)),
            **knobs,
        )

    def to_hf_dict(self) -> dict[str, Any]:
        return {
            "model_type": "smolvlm",
            "architectures": ["SmolVLMForConditionalGeneration"],
            "scale_factor": self.scale_factor,
            "image_token_id": self.image_token_id,
            "tie_word_embeddings": self.text.tie_word_embeddings,
            "vision_config": {"model_type": "smolvlm_vision", **self.vision.to_hf_dict()},
            "text_config": self.text.to_hf_dict(),
        }

    @classmethod
    def tiny(cls, **overrides) -> SmolVLMConfig:
        """A few-KB model for tests; vocab 1024 leaves room for 256 action bins at the end."""
        vision = ViTConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=4,
            layer_norm_eps=1e-6,
            hidden_act="gelu_pytorch_tanh",
            variant="siglip",
        )
        text = dataclasses.replace(
            SMOLLM2_135M,
            vocab_size=1024,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=512,
        )
        return cls(vision=vision, text=text, scale_factor=2).replace(**overrides)

    @classmethod
    def full(cls, size: str = "256M", **overrides) -> SmolVLMConfig:
        """HuggingFaceTB/SmolVLM2-{256M,500M}-Video-Instruct (values transcribed in docs/backbones.md)."""
        if size not in RELEASED:
            raise VLAJaxError(f"SmolVLM size {size!r} is not one of {sorted(RELEASED)}")
        vision, text = RELEASED[size]
        return cls(vision=vision, text=text).replace(**overrides)


def pixel_shuffle(x: jax.Array, s: int) -> jax.Array:
    """HF `SmolVLMConnector.pixel_shuffle`: [N, g*g, D] -> [N, (g/s)^2, D*s*s], same element order."""
    n, seq, d = x.shape
    g = int(round(seq**0.5))
    x = x.reshape(n, g, g // s, d * s)  # fold s neighbouring columns into the features
    x = x.transpose(0, 2, 1, 3).reshape(n, g // s, g // s, d * s * s)  # then s neighbouring rows
    return x.transpose(0, 2, 1, 3).reshape(n, seq // (s * s), d * s * s)


class Connector(nn.Module):
    config: SmolVLMConfig

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        cfg = self.config
        x = pixel_shuffle(features, cfg.scale_factor)
        return nn.Dense(
            cfg.text.hidden_size, use_bias=False, dtype=cfg.compute_dtype, param_dtype=jnp.float32, name="proj"
        )(x)


class SmolVLMBackbone(DecoderVLMBackbone):
    config: SmolVLMConfig

    def setup(self):
        cfg, dt = self.config, self.config.compute_dtype
        self.vision_model = VisionTransformer(cfg.vision, dt, cfg.scan_layers, cfg.remat)
        self.connector = Connector(cfg)
        self.text_model = DecoderLM(cfg.text, dt, cfg.scan_layers, cfg.remat)

    def project(self, features):
        return self.connector(features)


FAMILY = backbone_lib.Family(
    model_type="smolvlm",
    config_cls=SmolVLMConfig,
    module_cls=SmolVLMBackbone,
    table_module="vla_jax.convert.smolvlm_table",
    hf_class="SmolVLMForConditionalGeneration",
)
