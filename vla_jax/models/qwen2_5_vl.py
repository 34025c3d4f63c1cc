"""Qwen2.5-VL in Flax linen, number for number HF's `Qwen2_5_VLForConditionalGeneration` on fixed-size frames.

Vision tower with 2-D rotary positions, window attention and full-attention blocks, RMSNorm /
SwiGLU blocks and the 2x2 patch merger (`vision_model`, `vla_jax.models.qwen_vit`) -> Qwen2 LM
(`text_model`, `vla_jax.models.decoder` qwen2 variant: llama with biased q/k/v) with multimodal
(3-D) rotary positions. Causal attention, CLIP mean/std, no bracket tokens needed (HF's prompt
wraps the image in `<|vision_start|>` ... `<|vision_end|>`: `VLAConfig.image_bracket_tokens` =
(151652, 151653) reproduces it).

Image tokens per frame: (image_size / 28)^2: 64 at 224 px, 256 at 448 px (patch 14, merge 2).

Multimodal positions (HF `get_rope_index` for images): every slot has a (t, h, w) position id.
A text slot's three ids are equal and count up by one; an image of g x g merged tokens starting at
position b gets (b, b + row, b + column), and the text after it continues at b + g (not b + g^2).
Padding slots get 0, as HF. `sequence_positions(valid, image_index)` computes this for any layout
of valid slots and image slots (`image_index` = index of the slot inside its frame's image, -1
elsewhere), so the structures' packed sequences, the interleaved one with T images included, get
HF's positions; `decode` without positions uses HF's text-only default (arange for all three).

Interface (`vla_jax.models.backbone`): `vision_tower` = HF `model.visual(px, grid_thw).last_hidden_state`
(window order), `encode_images` = its `pooler_output` (= `get_image_features`), `embed_tokens` =
HF `get_input_embeddings()(ids)` (no scale), `lm_logits` = `lm_head` (tied for 3B).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.decoder import DecoderConfig, DecoderLM, DecoderVLMBackbone
from vla_jax.models.qwen_vit import QwenVisionTransformer, QwenViTConfig
from vla_runtime.policy_io import CLIP_MEAN, CLIP_STD

# Qwen/Qwen2.5-VL-3B-Instruct's config.json (transcribed in docs/backbones.md).
QWEN2_5_VL_3B_VISION = QwenViTConfig()
QWEN2_5_VL_3B_TEXT = DecoderConfig(
    variant="qwen2",
    vocab_size=151936,
    hidden_size=2048,
    intermediate_size=11008,
    num_hidden_layers=36,
    num_attention_heads=16,
    num_key_value_heads=2,
    head_dim=128,
    rms_norm_eps=1e-6,
    rope_theta=1000000.0,
    hidden_act="silu",
    max_position_embeddings=128000,
    tie_word_embeddings=True,
    query_pre_attn_scalar=None,
    attn_logit_softcapping=None,
    final_logit_softcapping=None,
    sliding_window=None,
    mrope_section=(16, 24, 24),
)
RELEASED = {"3B": (QWEN2_5_VL_3B_VISION, QWEN2_5_VL_3B_TEXT)}


def mrope_positions(valid: ArrayLike, image_index: ArrayLike, grid: int) -> jax.Array:
    """[3, B, S] int32 (t, h, w) position ids of HF's `get_rope_index` (module docstring).

    `valid` bool [B, S]; `image_index` int [B, S]: k for the k-th token of an image (row-major over the
    `grid` x `grid` merged tokens, every token of an image present), -1 for text."""
    valid, image_index = jnp.asarray(valid, bool), jnp.asarray(image_index)
    is_image = image_index >= 0
    last = image_index == grid * grid - 1
    step = jnp.where(valid, jnp.where(is_image, jnp.where(last, grid, 0), 1), 0)
    base = jnp.cumsum(step, axis=1) - step  # position of the slot (of its image's first token)
    row = jnp.where(is_image, image_index // grid, 0)
    col = jnp.where(is_image, image_index % grid, 0)
    pos = base[None] + jnp.stack([jnp.zeros_like(row), row, col])
    return jnp.where(valid[None], pos, 0).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class Qwen2_5_VLConfig(backbone_lib.BackboneConfig):
    """Defaults: Qwen/Qwen2.5-VL-3B-Instruct at 224 px."""

    model_type = "qwen2_5_vl"
    image_mean = CLIP_MEAN
    image_std = CLIP_STD

    vision: QwenViTConfig = QWEN2_5_VL_3B_VISION
    text: DecoderConfig = QWEN2_5_VL_3B_TEXT
    image_token_id: int = 151655  # HF's placeholder ids; kept for the config round trip and verify-hf
    video_token_id: int = 151656
    vision_start_token_id: int = 151652
    vision_end_token_id: int = 151653
    dtype: str = "float32"
    scan_layers: bool = True
    remat: bool = False

    def __post_init__(self):
        if self.text.variant != "qwen2":
            raise VLAJaxError(f"qwen2_5_vl: the text model is Qwen2 (variant 'qwen2'), got {self.text.variant!r}")
        if self.text.mrope_section is None:
            raise VLAJaxError("qwen2_5_vl: the text config needs mrope_section (multimodal rotary sections)")
        if self.vision.out_hidden_size != self.text.hidden_size:
            raise VLAJaxError(
                f"qwen2_5_vl: vision out_hidden_size={self.vision.out_hidden_size} must equal the text "
                f"hidden_size={self.text.hidden_size}"
            )

    @property
    def image_size(self) -> int:
        return self.vision.image_size

    @property
    def image_tokens(self) -> int:
        return self.vision.num_tokens

    @property
    def first_position(self) -> int:
        return 0

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], image_size: int = 224, **knobs) -> Qwen2_5_VLConfig:
        """From a Qwen2.5-VL config.json dict as transformers' `Qwen2_5_VLConfig(...).to_dict()` fills it.

        `image_size`: the frame side when the file has none (a hub file: HF's processor sizes each image; our
        exports and convert-hf write `vision_config.image_size`)."""
        if d.get("model_type") != cls.model_type:
            raise VLAJaxError(f"config model_type is {d.get('model_type')!r}, expected {cls.model_type!r}")
        text_d = dict(d.get("text_config") or {})
        if text_d.get("use_sliding_window"):
            raise VLAJaxError("text_config.use_sliding_window=true is not supported (released checkpoints: false)")
        text = DecoderConfig.from_hf_dict({**text_d, "model_type": "qwen2"}, "text_config")
        tie = bool(d.get("tie_word_embeddings", text_d.get("tie_word_embeddings", False)))
        return cls(
            vision=cls.vision_from_hf(d.get("vision_config") or {}, image_size),
            text=dataclasses.replace(text, tie_word_embeddings=tie),
            image_token_id=int(d.get("image_token_id", 151655)),
            video_token_id=int(d.get("video_token_id", 151656)),
            vision_start_token_id=int(d.get("vision_start_token_id", 151652)),
            vision_end_token_id=int(d.get("vision_end_token_id", 151653)),
            **knobs,
        )

    @classmethod
    def vision_from_hf(cls, d: dict[str, Any], image_size: int) -> QwenViTConfig:
        return QwenViTConfig.from_hf_dict(d, image_size, "vision_config")

    def to_hf_dict(self) -> dict[str, Any]:
        text = self.text.to_hf_dict()
        for key in ("head_dim", "attention_bias"):  # not Qwen2.5-VL text-config keys (derived / fixed in HF)
            text.pop(key)
        return {
            "model_type": self.model_type,
            "architectures": ["Qwen2_5_VLForConditionalGeneration"],
            "image_token_id": self.image_token_id,
            "video_token_id": self.video_token_id,
            "vision_start_token_id": self.vision_start_token_id,
            "vision_end_token_id": self.vision_end_token_id,
            "tie_word_embeddings": self.text.tie_word_embeddings,
            "vision_config": self.vision.to_hf_dict(),
            "text_config": {**text, "model_type": "qwen2_5_vl_text", "use_sliding_window": False},
        }

    @classmethod
    def tiny(cls, **overrides) -> Qwen2_5_VLConfig:
        """A few-KB model for tests (56 px: 4 x 4 patches, 2 x 2 image tokens, one 28 px window per merge unit
        pair); vocab 1024 leaves room for 256 action bins at the end."""
        vision = QwenViTConfig(
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=2,
            patch_size=14,
            window_size=28,
            out_hidden_size=32,
            fullatt_block_indexes=(1,),
            image_size=56,
        )
        text = dataclasses.replace(
            QWEN2_5_VL_3B_TEXT,
            vocab_size=1024,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=512,
            mrope_section=(1, 1, 2),
        )
        return cls(vision=vision, text=text).replace(**overrides)

    @classmethod
    def full(cls, size: str = "3B", **overrides) -> Qwen2_5_VLConfig:
        """Qwen/Qwen2.5-VL-{size}-Instruct (values transcribed in docs/backbones.md)."""
        if size not in RELEASED:
            raise VLAJaxError(f"Qwen2.5-VL size {size!r} is not one of {sorted(RELEASED)}")
        vision, text = RELEASED[size]
        return cls(vision=vision, text=text).replace(**overrides)


class Qwen2_5_VLBackbone(DecoderVLMBackbone):
    config: Qwen2_5_VLConfig

    def setup(self):
        cfg, dt = self.config, self.config.compute_dtype
        self.vision_model = QwenVisionTransformer(cfg.vision, dt, cfg.scan_layers, cfg.remat)
        self.text_model = DecoderLM(cfg.text, dt, cfg.scan_layers, cfg.remat)

    def project(self, features):
        return self.vision_model.merge(features)

    def sequence_positions(self, valid, image_index):
        return mrope_positions(valid, image_index, self.config.vision.merged_grid)


FAMILY = backbone_lib.Family(
    model_type="qwen2_5_vl",
    config_cls=Qwen2_5_VLConfig,
    module_cls=Qwen2_5_VLBackbone,
    table_module="vla_jax.convert.qwen2_5_vl_table",
    hf_class="Qwen2_5_VLForConditionalGeneration",
)
