"""Kosmos-2 in Flax linen, number for number the Hugging Face `Kosmos2ForConditionalGeneration`.

Three parts, named like HF's modules so `vla_jax.convert` maps weights one-to-one:

* `vision_model`: the CLIP variant of `vla_jax.models.vit` (class token, learned positions,
  `pre_layrnorm`, pre-LN encoder layers with quick_gelu MLP, `post_layernorm`).
* `image_to_text_projection`: dense + `latent_query_num` learned queries that cross-attend to
  [projected patches ; queries] (HF `Kosmos2ImageToTextProjection`).
* `text_model`: Magneto-style decoder (sinusoidal positions offset by `pad_token_id + 1`, scaled
  embeddings, `inner_attn_ln` inside self-attention, `ffn_layernorm` inside the FFN, final
  `layer_norm`, LM head tied to `embed_tokens`).

Sequence-building convention (as in HF and RoboVLMs): everything placed in the decoder's input
sequence is multiplied by `sqrt(embed_dim)` when `scale_embedding`. `embed_tokens` and
`encode_images` both return already-scaled vectors, so callers concatenate them freely and call
`decode`, which only adds positions. `image_to_text` gives the unscaled projection (HF's
`image_embeds`) for parity checks.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.attention import MultiHeadAttention, decoder_mask
from vla_jax.models.stacking import apply_layers
from vla_jax.models.vit import VisionTransformer, ViTConfig, activation
from vla_runtime.policy_io import CLIP_MEAN, CLIP_STD

# Kosmos-2's vision tower is a CLIP ViT; ViTConfig's defaults are Kosmos-2's (CLIP ViT-L/14, 224 px).
Kosmos2VisionConfig = ViTConfig


@dataclasses.dataclass(frozen=True)
class Kosmos2TextConfig:
    vocab_size: int = 65037
    embed_dim: int = 2048
    layers: int = 24
    ffn_dim: int = 8192
    attention_heads: int = 32
    layer_norm_eps: float = 1e-5
    scale_embedding: bool = True
    pad_token_id: int = 1
    max_position_embeddings: int = 2048
    activation_function: str = "gelu"
    # Residual/embedding dropout (HF `dropout`); only active with deterministic=False.
    dropout: float = 0.1

    @property
    def embed_scale(self) -> float:
        return math.sqrt(self.embed_dim) if self.scale_embedding else 1.0


def _text_config(d: dict[str, Any] | None, where: str) -> Kosmos2TextConfig:
    d = dict(d or {})
    if d.get("add_cross_attention"):
        raise VLAJaxError(f"{where}.add_cross_attention=true is not supported (Kosmos-2 never uses it)")
    if d.get("pad_token_id") is None and "pad_token_id" in d:
        raise VLAJaxError(f"{where}.pad_token_id is null; Kosmos-2 positions need a pad id (1)")
    known = {f.name for f in dataclasses.fields(Kosmos2TextConfig)}
    return Kosmos2TextConfig(**{k: v for k, v in d.items() if k in known})


def vision_config_from_hf(d: dict[str, Any] | None, where: str) -> ViTConfig:
    """A CLIP-style vision sub-config (Kosmos-2's or a CLIPVisionModel's); missing keys = Kosmos-2 defaults."""
    return ViTConfig.from_hf_dict({**dataclasses.asdict(ViTConfig()), **(d or {})}, "clip", where)


@dataclasses.dataclass(frozen=True)
class Kosmos2Config(backbone_lib.BackboneConfig):
    model_type = "kosmos-2"
    relative_positions = False  # sinusoidal position embeddings added to the decoder's inputs
    image_mean = CLIP_MEAN
    image_std = CLIP_STD

    vision: Kosmos2VisionConfig = Kosmos2VisionConfig()
    text: Kosmos2TextConfig = Kosmos2TextConfig()
    latent_query_num: int = 64
    # Run-time knobs, not part of the HF config.
    dtype: str = "float32"  # compute dtype; params always float32
    scan_layers: bool = True
    remat: bool = False

    def __post_init__(self):
        if self.vision.variant != "clip":
            raise VLAJaxError(
                f"{self.model_type}: the vision tower must be a CLIP ViT (variant 'clip'), got {self.vision.variant!r}"
            )

    # -- the interface's facts ----------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return self.text.embed_dim

    @property
    def image_tokens(self) -> int:
        return self.latent_query_num

    @property
    def first_position(self) -> int:
        return self.text.pad_token_id + 1  # HF's inputs_embeds path

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], **knobs) -> Kosmos2Config:
        """Build from a HF `config.json` dict (model_type "kosmos-2")."""
        model_type = d.get("model_type")
        if model_type != "kosmos-2":
            raise VLAJaxError(
                f"config model_type is {model_type!r}, expected 'kosmos-2' (this is not a Kosmos-2 checkpoint)"
            )
        return cls(
            vision=vision_config_from_hf(d.get("vision_config"), "vision_config"),
            text=_text_config(d.get("text_config"), "text_config"),
            latent_query_num=int(d.get("latent_query_num", 64)),
            **knobs,
        )

    def to_hf_dict(self) -> dict[str, Any]:
        return {
            "model_type": "kosmos-2",
            "architectures": ["Kosmos2ForConditionalGeneration"],
            "latent_query_num": self.latent_query_num,
            "vision_config": {"model_type": "kosmos_2_vision_model", **self.vision.to_hf_dict()},
            "text_config": {
                "model_type": "kosmos_2_text_model",
                "tie_word_embeddings": True,
                **dataclasses.asdict(self.text),
            },
        }

    @classmethod
    def tiny(cls, **overrides) -> Kosmos2Config:
        """A few-KB model for tests; vocab 1024 leaves room for 256 action bins at the end."""
        base = cls(
            vision=Kosmos2VisionConfig(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                image_size=32,
                patch_size=8,
            ),
            text=Kosmos2TextConfig(
                vocab_size=1024, embed_dim=32, layers=2, ffn_dim=64, attention_heads=2, max_position_embeddings=512
            ),
            latent_query_num=8,
        )
        return base.replace(**overrides)

    @classmethod
    def full(cls, **overrides) -> Kosmos2Config:
        """microsoft/kosmos-2-patch14-224."""
        return cls().replace(**overrides)


# ----------------------------------------------------------------------------------------------
# Image-to-text projection (the vision tower is `vla_jax.models.vit`'s CLIP variant)
# ----------------------------------------------------------------------------------------------


def _layer_norm(eps: float, dtype, name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=eps, dtype=dtype, param_dtype=jnp.float32, name=name)


def _dense(features: int, dtype, name: str) -> nn.Dense:
    return nn.Dense(features, dtype=dtype, param_dtype=jnp.float32, name=name)


class ImageToTextProjection(nn.Module):
    """HF `Kosmos2ImageToTextProjection`: latent queries cross-attend to [dense(patches); queries]."""

    config: Kosmos2Config

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        cfg, dt = self.config, self.config.compute_dtype
        hidden = _dense(cfg.text.embed_dim, dt, "dense")(features)
        latent = self.param(
            "latent_query", nn.initializers.normal(1.0), (cfg.latent_query_num, cfg.text.embed_dim), jnp.float32
        ).astype(dt)
        latent = jnp.broadcast_to(latent, (hidden.shape[0],) + latent.shape)
        kv = jnp.concatenate([hidden, latent], axis=1)
        return MultiHeadAttention(cfg.text.attention_heads, dtype=dt, name="x_attn")(latent, kv)


# ----------------------------------------------------------------------------------------------
# Text decoder
# ----------------------------------------------------------------------------------------------


def sinusoidal_positions(positions: jax.Array, dim: int, padding_idx: int) -> jax.Array:
    """fairseq/M2M100 sinusoidal table evaluated at `positions` (row `padding_idx` is zero), as HF."""
    half = dim // 2
    freq = jnp.exp(jnp.arange(half, dtype=jnp.float32) * -(math.log(10000.0) / (half - 1)))
    angles = positions.astype(jnp.float32)[..., None] * freq
    emb = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
    if dim % 2:
        emb = jnp.pad(emb, [(0, 0)] * (emb.ndim - 1) + [(0, 1)])
    return jnp.where((positions == padding_idx)[..., None], 0.0, emb)


def position_ids_from_tokens(token_ids: jax.Array, pad_token_id: int, offset: int = 0) -> jax.Array:
    """HF's input_ids path: non-pad tokens count up from pad_token_id + 1; pads get pad_token_id."""
    not_pad = (token_ids != pad_token_id).astype(jnp.int32)
    return (jnp.cumsum(not_pad, axis=1) + offset) * not_pad + pad_token_id


class TextBlock(nn.Module):
    config: Kosmos2TextConfig
    dtype: Any = jnp.float32
    deterministic: bool = True

    @nn.compact
    def __call__(self, x, mask):
        cfg = self.config
        h = _layer_norm(cfg.layer_norm_eps, self.dtype, "self_attn_layer_norm")(x)
        h = MultiHeadAttention(
            cfg.attention_heads, inner_ln_eps=cfg.layer_norm_eps, dtype=self.dtype, name="self_attn"
        )(h, mask=mask)
        x = x + nn.Dropout(cfg.dropout)(h, deterministic=self.deterministic)
        h = _layer_norm(cfg.layer_norm_eps, self.dtype, "final_layer_norm")(x)
        h = TextFFN(cfg, self.dtype, name="ffn")(h)
        x = x + nn.Dropout(cfg.dropout)(h, deterministic=self.deterministic)
        return x, None


class TextFFN(nn.Module):
    config: Kosmos2TextConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        cfg = self.config
        h = activation(cfg.activation_function)(_dense(cfg.ffn_dim, self.dtype, "fc1")(x))
        h = _layer_norm(cfg.layer_norm_eps, self.dtype, "ffn_layernorm")(h)
        return _dense(cfg.embed_dim, self.dtype, "fc2")(h)


class TextTransformer(nn.Module):
    config: Kosmos2Config

    def setup(self):
        cfg = self.config.text
        self.embed_tokens = nn.Embed(
            cfg.vocab_size, cfg.embed_dim, embedding_init=nn.initializers.normal(0.02), param_dtype=jnp.float32
        )
        self.layer_norm = _layer_norm(cfg.layer_norm_eps, self.config.compute_dtype, "layer_norm")
        self.decoder = TextStack(self.config)
        self.embed_dropout = nn.Dropout(cfg.dropout)

    def embed(self, token_ids):
        return self.embed_tokens(token_ids).astype(self.config.compute_dtype) * self.config.text.embed_scale

    def decode(self, inputs_embeds, attention_mask, positions, deterministic, block_ids=None):
        cfg, dt = self.config.text, self.config.compute_dtype
        x = inputs_embeds.astype(dt) + sinusoidal_positions(positions, cfg.embed_dim, cfg.pad_token_id).astype(dt)
        x = self.embed_dropout(x, deterministic=deterministic)
        x = self.decoder(x, decoder_mask(attention_mask, block_ids), deterministic)
        return self.layer_norm(x)

    def logits(self, hidden):
        return self.embed_tokens.attend(hidden.astype(jnp.float32))


class TextStack(nn.Module):
    config: Kosmos2Config

    @nn.compact
    def __call__(self, x, mask, deterministic: bool):
        cfg = self.config
        kwargs = {"config": cfg.text, "dtype": cfg.compute_dtype, "deterministic": deterministic}
        return apply_layers(TextBlock, kwargs, cfg.text.layers, x, mask, scan=cfg.scan_layers, remat=cfg.remat)


# ----------------------------------------------------------------------------------------------
# The backbone
# ----------------------------------------------------------------------------------------------


class Kosmos2Backbone(backbone_lib.Backbone):
    """Kosmos-2 on the backbone interface (`vla_jax.models.backbone`; torch equivalents in docs/INTERFACES.md)."""

    config: Kosmos2Config

    def setup(self):
        cfg = self.config
        self.vision_model = VisionTransformer(cfg.vision, cfg.compute_dtype, cfg.scan_layers, cfg.remat)
        self.image_to_text_projection = ImageToTextProjection(self.config)
        self.text_model = TextTransformer(self.config)

    # -- vision -------------------------------------------------------------------------------
    def vision_tower(self, pixel_values: jax.Array) -> jax.Array:
        """[N, H, W, 3] CLIP-normalised -> encoder last hidden state [N, 1 + patches, vision.hidden]."""
        return self.vision_model(pixel_values)

    def image_to_text(self, pixel_values: jax.Array) -> jax.Array:
        """HF `image_embeds`: post-LN, L2-normalised patches -> projection. Unscaled."""
        feats = self.vision_model.post_layernorm(self.vision_model(pixel_values))
        feats32 = feats.astype(jnp.float32)
        # HF applies F.normalize(dim=-1, eps=1e-12) between post_layernorm and the projection.
        norm = jnp.maximum(jnp.linalg.norm(feats32, axis=-1, keepdims=True), 1e-12)
        return self.image_to_text_projection((feats32 / norm).astype(feats.dtype))

    def encode_images(self, pixel_values: jax.Array) -> jax.Array:
        """[N, H, W, 3] -> [N, latent_query_num, embed_dim], scaled like `embed_tokens` output."""
        return self.image_to_text(pixel_values) * self.config.text.embed_scale

    # -- text ---------------------------------------------------------------------------------
    def embed_tokens(self, token_ids: jax.Array) -> jax.Array:
        """int [B, S] -> [B, S, D], multiplied by sqrt(D) when scale_embedding."""
        return self.text_model.embed(token_ids)

    def decode(
        self,
        inputs_embeds: jax.Array,
        attention_mask: jax.Array | None = None,
        deterministic: bool = True,
        positions: jax.Array | None = None,
        position_offset: int | jax.Array = 0,
        block_ids: jax.Array | None = None,
    ) -> jax.Array:
        """Causal decoder over already-scaled embeddings -> last hidden state after the final LN.

        Positions default to HF's inputs_embeds path: pad_token_id + 1 + position_offset + [0..S).
        Pass `positions` [B, S] to use explicit position ids (e.g. `position_ids_from_tokens`).
        `position_offset` lets an incremental/KV-cache runtime continue numbering. `block_ids`
        (bidirectional groups, see `attention.decoder_mask`) is accepted for the interface; the
        structures pass it only to prefix-LM families.
        """
        b, s = inputs_embeds.shape[:2]
        if attention_mask is None:
            attention_mask = jnp.ones((b, s), dtype=bool)
        if positions is None:
            start = self.config.text.pad_token_id + 1
            positions = start + jnp.asarray(position_offset) + jnp.arange(s)[None, :]
            positions = jnp.broadcast_to(positions, (b, s))
        return self.text_model.decode(inputs_embeds, attention_mask, positions, deterministic, block_ids)

    def lm_logits(self, hidden: jax.Array) -> jax.Array:
        """Tied LM head -> float32 [B, S, vocab]."""
        return self.text_model.logits(hidden)

    # -- the whole Kosmos-2 forward (used for init and parity) --------------------------------
    def init_inputs(self) -> tuple:
        cfg = self.config
        s = cfg.latent_query_num + 2
        pixels = jnp.zeros((1, cfg.vision.image_size, cfg.vision.image_size, 3), jnp.float32)
        return pixels, jnp.full((1, s), 2, jnp.int32), jnp.arange(s)[None] >= 2

    def __call__(
        self,
        pixel_values: jax.Array,
        token_ids: jax.Array,
        image_positions_mask: jax.Array,
        attention_mask: jax.Array | None = None,
        deterministic: bool = True,
    ) -> jax.Array:
        """HF `Kosmos2Model.forward` (input_ids path): image embeds overwrite the masked token slots.

        image_positions_mask: bool [B, S] with exactly latent_query_num True per row.
        """
        image = self.encode_images(pixel_values)  # [B, Q, D]
        embeds = self.embed_tokens(token_ids)
        # k-th True slot in a row takes the k-th latent query of that row's image.
        slot = jnp.clip(jnp.cumsum(image_positions_mask, axis=1) - 1, 0, image.shape[1] - 1)
        gathered = jnp.take_along_axis(image, slot[..., None], axis=1)
        embeds = jnp.where(image_positions_mask[..., None], gathered.astype(embeds.dtype), embeds)
        positions = position_ids_from_tokens(token_ids, self.config.text.pad_token_id)
        hidden = self.decode(embeds, attention_mask, deterministic, positions=positions)
        return hidden


def init_params(config: Kosmos2Config, rng: jax.Array | int = 0) -> dict:
    """Random float32 params for `config` (= `backbone.init_params`)."""
    return backbone_lib.init_params(config, rng)


FAMILY = backbone_lib.Family(
    model_type="kosmos-2",
    config_cls=Kosmos2Config,
    module_cls=Kosmos2Backbone,
    table_module="vla_jax.convert.kosmos2_table",
    hf_class="Kosmos2ForConditionalGeneration",
)
