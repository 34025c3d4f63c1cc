"""The IDEFICS (Flamingo) backbone config: HF `IdeficsConfig` <-> ours (`model_type` "idefics").

Defaults: HuggingFaceM4/idefics-9b (a CLIP ViT-H/14 tower, a 6-layer perceiver resampler with 64
latents, LLaMA-7B with 2 additional embeddings (`<fake_token_around_image>` 32000, `<image>`
32001) and a gated cross-attention layer before every 4th LM block). The released config.json
could not be read offline here (no hub); the values are transcribed from its published
config (vision ViT-H/14 at 224 px, embed_dim 1280, 32 layers, 16 heads, intermediate 5120;
perceiver depth 6, 16 heads of 96, 64 latents; LM as LLaMA-7B, rms_norm_eps 1e-6,
cross_layer_interval 4, additional_vocab_size 2).

The model itself is `vla_jax.models.idefics`; this file only holds what a config needs, so the
mapping table and the CLI can read configs without building modules.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.decoder import DecoderConfig
from vla_jax.models.vit import ViTConfig
from vla_runtime.policy_io import CLIP_MEAN, CLIP_STD

# laion/CLIP-ViT-H-14-laion2B-s32B-b79K as IDEFICS-9B's `vision_config` (IDEFICS names the width embed_dim).
CLIP_VIT_H14 = ViTConfig(
    hidden_size=1280,
    intermediate_size=5120,
    num_hidden_layers=32,
    num_attention_heads=16,
    image_size=224,
    patch_size=14,
    layer_norm_eps=1e-5,
    hidden_act="gelu",
    variant="clip",
)
# LLaMA-7B, IDEFICS-9B's LM (heads = key/value heads, head_dim = hidden / heads).
LLAMA_7B = DecoderConfig(
    variant="llama",
    vocab_size=32000,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    head_dim=128,
    rms_norm_eps=1e-6,
    rope_theta=10000.0,
    hidden_act="silu",
    max_position_embeddings=2048,
    tie_word_embeddings=False,
    query_pre_attn_scalar=None,
    attn_logit_softcapping=None,
    final_logit_softcapping=None,
    sliding_window=None,
)
ALPHA_TYPES = ("float", "vector")
ALPHA_INITIALIZERS = ("zeros", "ones", "normal", "gaussian", "random")


@dataclasses.dataclass(frozen=True)
class PerceiverConfig:
    """HF `IdeficsPerceiverConfig` (its own `use_resampler` is unused by HF; the top-level one counts)."""

    resampler_depth: int = 6
    resampler_n_heads: int = 16
    resampler_head_dim: int = 96
    resampler_n_latents: int = 64
    qk_layer_norms_perceiver: bool = False


@dataclasses.dataclass(frozen=True)
class IdeficsConfig(backbone_lib.BackboneConfig):
    """Defaults: HuggingFaceM4/idefics-9b (module docstring). `image_token`: the tokenizer's `<image>` id, where
    the structures put a frame (HF's config does not hold it; None: the last id, 32001 for IDEFICS-9B; set, it
    travels as config.json's `image_token_id`, which transformers keeps as an extra attribute)."""

    model_type = "idefics"
    image_mean = CLIP_MEAN
    image_std = CLIP_STD
    # Images reach the LM through cross-attention, not as sequence slots (vla.py reads this).
    cross_attention_media: ClassVar[bool] = True

    vision: ViTConfig = CLIP_VIT_H14
    text: DecoderConfig = LLAMA_7B
    perceiver: PerceiverConfig = PerceiverConfig()
    use_resampler: bool = True
    additional_vocab_size: int = 2
    cross_layer_interval: int = 4
    qk_layer_norms: bool = False
    alpha_type: str = "float"
    alpha_initializer: str = "zeros"
    alphas_initializer_range: float = 0.0
    image_token: int | None = None
    dtype: str = "float32"
    scan_layers: bool = True
    remat: bool = False

    def __post_init__(self):
        def bad(msg):
            raise VLAJaxError(f"idefics: {msg}")

        if self.vision.variant != "clip":
            bad(f"the vision tower is CLIP-like (variant 'clip'), got {self.vision.variant!r}")
        t = self.text
        if t.variant != "llama" or t.num_key_value_heads != t.num_attention_heads:
            bad("the LM is LLaMA with one key/value head per query head (variant 'llama', no grouped-query)")
        if t.head_dim * t.num_attention_heads != t.hidden_size:
            bad(f"head_dim {t.head_dim} x heads {t.num_attention_heads} must equal hidden_size {t.hidden_size}")
        if self.cross_layer_interval < 1 or t.num_hidden_layers % self.cross_layer_interval:
            bad(
                f"num_hidden_layers={t.num_hidden_layers} must be a multiple of cross_layer_interval="
                f"{self.cross_layer_interval} (HF's IdeficsModel indexes a missing cross-attention layer otherwise)"
            )
        if self.alpha_type not in ALPHA_TYPES:
            bad(f"alpha_type={self.alpha_type!r}; use one of {ALPHA_TYPES}")
        if self.alpha_initializer not in ALPHA_INITIALIZERS:
            bad(f"alpha_initializer={self.alpha_initializer!r}; use one of {ALPHA_INITIALIZERS}")
        if self.additional_vocab_size < 0:
            bad(f"additional_vocab_size={self.additional_vocab_size} must be >= 0")
        if not 0 <= self.image_token_id < self.vocab_size:
            bad(
                f"image_token={self.image_token_id} must be a token id < vocab_size + additional_vocab_size "
                f"= {self.vocab_size}"
            )

    # -- the interface ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:  # lm_logits' width: the decoupled head's regular + additional columns
        return self.text.vocab_size + self.additional_vocab_size

    @property
    def image_token_id(self) -> int:
        return self.vocab_size - 1 if self.image_token is None else self.image_token

    @property
    def media_width(self) -> int:  # what cross-attention reads: the vision width (the resampler keeps it)
        return self.vision.hidden_size

    @property
    def image_tokens(self) -> int:  # media vectors per frame (encode_images); the sequence holds one <image> slot
        return self.perceiver.resampler_n_latents if self.use_resampler else self.vision.num_tokens

    @property
    def first_position(self) -> int:
        return 0

    @property
    def num_cross_layers(self) -> int:
        return self.text.num_hidden_layers // self.cross_layer_interval

    def truncated(self, num_layers: int) -> IdeficsConfig:
        """`--num-layers N`: the first N vision layers and the first N LM blocks rounded UP to whole
        cross-attention groups (HF cannot build fewer LM blocks than `cross_layer_interval`)."""
        k = self.cross_layer_interval
        text_n = min(self.text.num_hidden_layers, -(-num_layers // k) * k)
        return self.replace(
            vision={"num_hidden_layers": min(num_layers, self.vision.num_hidden_layers)},
            text={"num_hidden_layers": text_n},
        )

    # -- HF config.json <-> ours ---------------------------------------------------------------
    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], **knobs) -> IdeficsConfig:
        """From an IDEFICS config.json dict as transformers' `IdeficsConfig(...).to_dict()` fills it."""
        if d.get("model_type") != "idefics":
            raise VLAJaxError(f"config model_type is {d.get('model_type')!r}, expected 'idefics'")
        rope = d.get("rope_parameters") or {}
        if rope.get("rope_type", "default") != "default":
            raise VLAJaxError(f"rope type {rope.get('rope_type')!r} is not supported (only the default RoPE)")
        heads = int(d["num_attention_heads"])
        text = dataclasses.replace(
            LLAMA_7B,
            vocab_size=int(d["vocab_size"]),
            hidden_size=int(d["hidden_size"]),
            intermediate_size=int(d["intermediate_size"]),
            num_hidden_layers=int(d["num_hidden_layers"]),
            num_attention_heads=heads,
            num_key_value_heads=heads,
            head_dim=int(d["hidden_size"]) // heads,
            rms_norm_eps=float(d["rms_norm_eps"]),
            rope_theta=float(rope.get("rope_theta", 10000.0)),
            hidden_act=str(d.get("hidden_act", "silu")),
            max_position_embeddings=int(d.get("max_position_embeddings", 2048)),
            tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
        )
        vision = dict(d.get("vision_config") or {})
        vision["hidden_size"] = vision.get("embed_dim", vision.get("hidden_size"))
        p = d.get("perceiver_config") or {}
        perceiver = PerceiverConfig(**{f.name: p[f.name] for f in dataclasses.fields(PerceiverConfig) if f.name in p})
        return cls(
            vision=ViTConfig.from_hf_dict(vision, "clip", "vision_config"),
            text=text,
            perceiver=perceiver,
            use_resampler=bool(d.get("use_resampler", False)),
            additional_vocab_size=int(d.get("additional_vocab_size", 0)),
            cross_layer_interval=int(d.get("cross_layer_interval", 1)),
            qk_layer_norms=bool(d.get("qk_layer_norms", False)),
            alpha_type=str(d.get("alpha_type", "float")),
            alpha_initializer=str(d.get("alpha_initializer", "zeros")),
            alphas_initializer_range=float(d.get("alphas_initializer_range", 0.0)),
            image_token=None if d.get("image_token_id") is None else int(d["image_token_id"]),
            **knobs,
        )

    def to_hf_dict(self) -> dict[str, Any]:
        t, v = self.text, self.vision
        vision = v.to_hf_dict()
        vision["embed_dim"] = vision.pop("hidden_size")
        return {
            "model_type": "idefics",
            "architectures": ["IdeficsForVisionText2Text"],
            "vocab_size": t.vocab_size,
            "additional_vocab_size": self.additional_vocab_size,
            "hidden_size": t.hidden_size,
            "intermediate_size": t.intermediate_size,
            "num_hidden_layers": t.num_hidden_layers,
            "num_attention_heads": t.num_attention_heads,
            "hidden_act": t.hidden_act,
            "rms_norm_eps": t.rms_norm_eps,
            "max_position_embeddings": t.max_position_embeddings,
            "rope_parameters": {"rope_type": "default", "rope_theta": t.rope_theta},
            "tie_word_embeddings": t.tie_word_embeddings,
            "cross_layer_interval": self.cross_layer_interval,
            "qk_layer_norms": self.qk_layer_norms,
            "use_resampler": self.use_resampler,
            "alpha_type": self.alpha_type,
            "alpha_initializer": self.alpha_initializer,
            "alphas_initializer_range": self.alphas_initializer_range,
            **({} if self.image_token is None else {"image_token_id": self.image_token}),
            "perceiver_config": {**dataclasses.asdict(self.perceiver), "use_resampler": self.use_resampler},
            "vision_config": vision,
        }

    @classmethod
    def tiny(cls, **overrides) -> IdeficsConfig:
        """A few-KB model for tests: 2 cross-attention groups of 2 LM blocks, a 2-block resampler, 4 latents;
        gates initialised to 1 (tanh 0.76) so the cross-attention path is not zeroed (HF's own tests do the same)."""
        vision = dataclasses.replace(
            CLIP_VIT_H14,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
        text = dataclasses.replace(
            LLAMA_7B,
            vocab_size=1024,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=4,
            head_dim=8,
            max_position_embeddings=512,
        )
        perceiver = PerceiverConfig(resampler_depth=2, resampler_n_heads=2, resampler_head_dim=8, resampler_n_latents=4)
        return cls(
            vision=vision,
            text=text,
            perceiver=perceiver,
            cross_layer_interval=2,
            alpha_initializer="ones",
        ).replace(**overrides)

    @classmethod
    def full(cls, **overrides) -> IdeficsConfig:
        """HuggingFaceM4/idefics-9b (module docstring)."""
        return cls().replace(**overrides)
