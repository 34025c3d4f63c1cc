"""One decoder-only LM for every family: RoPE, grouped-query attention, RMSNorm, gated MLP.

Variants (number for number HF's `LlamaModel`, `GemmaModel`, `Gemma2Model`; `qwen2` = `Qwen2Model`,
which is llama with biases on q/k/v (not on o_proj), and Qwen2-VL / Qwen2.5-VL's text model):

                 llama (SmolVLM)            gemma (PaliGemma 1)          gemma2 (PaliGemma 2)
    embedding    E[ids]                     E[ids] * sqrt(D)             E[ids] * sqrt(D)
    RMSNorm      w * norm(x)                (1 + w) * norm(x)            (1 + w) * norm(x)
    layer        x + attn(ln(x));           as llama                     x + ln_post(attn(ln(x)));
                 x + mlp(ln(x))                                          x + ln_post_ff(mlp(ln_pre_ff(x)))
    MLP act      silu                       gelu (tanh)                  gelu (tanh)
    scores       q.k / sqrt(head_dim)       as llama                     q.k / sqrt(query_pre_attn_scalar),
                                                                         tanh soft-capped; sliding-window
                                                                         layers per `layer_types`
    logits       h @ E.T or lm_head         h @ E.T                      tanh soft-capped (final_logit_softcapping)

RoPE is HF's "default" type (rotate-half layout, `rope_theta`); other RoPE types are refused.
With `mrope_section` set (Qwen2-VL / Qwen2.5-VL's multimodal RoPE) positions may be [3, B, S]
(temporal, height, width ids): the rotary frequencies are split into the sections and section j
takes its angles from axis j % 3, HF's `Qwen2_5_VLRotaryEmbedding`; [B, S] positions are used for
all three axes (text-only, what HF does with 2-D position ids).
Parameter names follow HF (`embed_tokens`, `decoder/layers/{input_layernorm, self_attn/{q,k,v,o}_proj,
post_attention_layernorm, pre_feedforward_layernorm, post_feedforward_layernorm,
mlp/{gate,up,down}_proj}`, `norm`, `lm_head`), so the mapping tables read one-to-one.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.attention import decoder_mask
from vla_jax.models.stacking import apply_layers
from vla_jax.models.vit import activation

VARIANTS = ("llama", "gemma", "gemma2", "qwen2")
SLIDING = "sliding_attention"


def _gemma2_layer_types(n: int) -> tuple[str, ...]:
    return tuple(SLIDING if (i + 1) % 2 else "full_attention" for i in range(n))


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """HF's text-config keys. Defaults: Gemma 2 2B (PaliGemma 2 3B's text model)."""

    variant: str = "gemma2"
    vocab_size: int = 257216
    hidden_size: int = 2304
    intermediate_size: int = 9216
    num_hidden_layers: int = 26
    num_attention_heads: int = 8
    num_key_value_heads: int = 4
    head_dim: int = 256
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    hidden_act: str = "gelu_pytorch_tanh"
    max_position_embeddings: int = 8192
    tie_word_embeddings: bool = True
    attention_bias: bool = False
    mlp_bias: bool = False
    query_pre_attn_scalar: float | None = 256
    attn_logit_softcapping: float | None = 50.0
    final_logit_softcapping: float | None = 30.0
    sliding_window: int | None = 4096
    layer_types: tuple[str, ...] | None = None  # None: every layer full attention
    mrope_section: tuple[int, ...] | None = None  # multimodal RoPE sections (Qwen2-VL / 2.5-VL), sum = head_dim / 2

    def __post_init__(self):
        def bad(msg):
            raise VLAJaxError(f"text config: {msg}")

        if self.variant not in VARIANTS:
            bad(f"variant={self.variant!r}; use one of {VARIANTS}")
        if self.num_attention_heads % self.num_key_value_heads:
            bad(
                f"num_attention_heads={self.num_attention_heads} is not a multiple of "
                f"num_key_value_heads={self.num_key_value_heads}"
            )
        if self.head_dim % 2:
            bad(f"head_dim={self.head_dim} must be even (rotary embedding)")
        if self.mrope_section is not None and sum(self.mrope_section) != self.head_dim // 2:
            bad(f"mrope_section={list(self.mrope_section)} must sum to head_dim / 2 = {self.head_dim // 2}")
        n = self.num_hidden_layers
        types = None if self.layer_types is None else tuple(self.layer_types)
        default_prefix = types is not None and len(types) < n and types == _gemma2_layer_types(len(types))
        if self.variant == "gemma2" and (types is None or default_prefix):
            types = _gemma2_layer_types(n)  # HF Gemma2Config's default, also when a default pattern is deepened
        if types is not None:
            types = types[:n]  # a shallower copy (tiny configs, --num-layers) keeps the first layers' types
        object.__setattr__(self, "layer_types", types)
        if self.layer_types is not None:
            if len(self.layer_types) != self.num_hidden_layers:
                bad(f"layer_types has {len(self.layer_types)} entries for num_hidden_layers={self.num_hidden_layers}")
            unknown = sorted(set(self.layer_types) - {SLIDING, "full_attention"})
            if unknown:
                bad(f"layer_types {unknown} are not supported (sliding_attention / full_attention)")
            if SLIDING in self.layer_types and not self.sliding_window:
                bad("layer_types has sliding_attention layers but sliding_window is not set")
        activation(self.hidden_act)

    @property
    def gemma(self) -> bool:
        return self.variant in ("gemma", "gemma2")

    @property
    def qkv_bias(self) -> bool:
        return self.attention_bias or self.variant == "qwen2"

    @property
    def embed_scale(self) -> float:
        return math.sqrt(self.hidden_size) if self.gemma else 1.0

    @property
    def sliding_layers(self) -> np.ndarray:
        types = self.layer_types or ("full_attention",) * self.num_hidden_layers
        return np.asarray([t == SLIDING for t in types])

    # -- HF config.json <-> ours ----------------------------------------------------------------
    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], where: str) -> DecoderConfig:
        """From a text sub-config dict that transformers' own config class filled in."""
        variant = d.get("model_type")
        if variant not in VARIANTS:
            raise VLAJaxError(f"{where}.model_type={variant!r} is not supported; supported: {', '.join(VARIANTS)}")
        rope = d.get("rope_parameters") or d.get("rope_scaling") or {}
        if rope.get("rope_type", rope.get("type", "default")) != "default":
            raise VLAJaxError(
                f"{where}: rope type {rope.get('rope_type', rope.get('type'))!r} is not supported "
                "(only the default RoPE)"
            )
        theta = rope.get("rope_theta", d.get("rope_theta", 10000.0))
        mrope = rope.get("mrope_section")
        act = d.get("hidden_activation") if variant == "gemma2" else d.get("hidden_act")
        if d.get("use_bidirectional_attention") and variant == "llama":
            raise VLAJaxError(f"{where}.use_bidirectional_attention=true is not supported for llama")
        heads = int(d["num_attention_heads"])
        gemma2 = variant == "gemma2"
        return cls(
            variant=variant,
            vocab_size=int(d["vocab_size"]),
            hidden_size=int(d["hidden_size"]),
            intermediate_size=int(d["intermediate_size"]),
            num_hidden_layers=int(d["num_hidden_layers"]),
            num_attention_heads=heads,
            num_key_value_heads=int(d.get("num_key_value_heads") or heads),
            head_dim=int(d.get("head_dim") or d["hidden_size"] // heads),
            rms_norm_eps=float(d["rms_norm_eps"]),
            rope_theta=float(theta),
            hidden_act=act or "silu",
            max_position_embeddings=int(d.get("max_position_embeddings", 8192)),
            tie_word_embeddings=bool(d.get("tie_word_embeddings", True)),
            attention_bias=bool(d.get("attention_bias", False)),
            mlp_bias=bool(d.get("mlp_bias", False)),
            query_pre_attn_scalar=d.get("query_pre_attn_scalar") if gemma2 else None,
            attn_logit_softcapping=d.get("attn_logit_softcapping") if gemma2 else None,
            final_logit_softcapping=d.get("final_logit_softcapping") if gemma2 else None,
            sliding_window=d.get("sliding_window") if gemma2 else None,
            layer_types=tuple(d["layer_types"]) if gemma2 and d.get("layer_types") else None,
            mrope_section=tuple(int(x) for x in mrope) if mrope else None,
        )

    def to_hf_dict(self) -> dict[str, Any]:
        d = {
            "model_type": self.variant,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": self.rope_theta,
                **({"mrope_section": list(self.mrope_section)} if self.mrope_section else {}),
            },
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": self.attention_bias,
        }
        if self.variant == "gemma2":
            d.update(
                hidden_activation=self.hidden_act,
                query_pre_attn_scalar=self.query_pre_attn_scalar,
                attn_logit_softcapping=self.attn_logit_softcapping,
                final_logit_softcapping=self.final_logit_softcapping,
                sliding_window=self.sliding_window,
                layer_types=list(self.layer_types) if self.layer_types else None,
            )
        else:
            d["hidden_act"] = self.hidden_act
        if self.variant == "llama":
            d["mlp_bias"] = self.mlp_bias
        return d


class RMSNorm(nn.Module):
    """Llama: ``w * norm(x)`` (w ones-initialised); Gemma: ``(1 + w) * norm(x)`` (w zeros). Statistics in float32."""

    eps: float
    gemma: bool
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.zeros if self.gemma else nn.initializers.ones
        w = self.param("scale", init, (x.shape[-1],), jnp.float32)
        x32 = x.astype(jnp.float32)
        y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        if self.gemma:  # HF: (x * (1 + w)) in float32, then cast
            return (y * (1.0 + w)).astype(self.dtype)
        return w.astype(self.dtype) * y.astype(self.dtype)  # HF: w * x.to(input dtype)


def rotate_half(x: jax.Array) -> jax.Array:
    """HF's `rotate_half`: [x1, x2] -> [-x2, x1] over the last axis (the text decoder's and Qwen's vision RoPE)."""
    half = x.shape[-1] // 2
    return jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def rotary(x: jax.Array, positions: jax.Array, theta: float, mrope_section: tuple[int, ...] | None = None) -> jax.Array:
    """HF rotate-half RoPE. x [B, S, H, hd], positions [B, S] (or [3, B, S] with `mrope_section`, module
    docstring); angles in float32, cos/sin cast to x.dtype."""
    hd = x.shape[-1]
    inv_freq = 1.0 / (theta ** (np.arange(0, hd, 2, dtype=np.float32) / np.float32(hd)))
    freqs = positions.astype(jnp.float32)[..., None] * jnp.asarray(inv_freq, jnp.float32)
    if positions.ndim == 3:  # [3, B, S, hd/2]: frequency i takes the angle of axis (its section's index) % 3
        if mrope_section is None:
            raise ValueError("3-D (multimodal) positions need a text config with mrope_section")
        bounds = np.cumsum((0, *mrope_section))
        freqs = jnp.concatenate(
            [freqs[j % 3, ..., bounds[j] : bounds[j + 1]] for j in range(len(mrope_section))], axis=-1
        )
    emb = jnp.concatenate([freqs, freqs], axis=-1)[:, :, None, :]
    cos, sin = jnp.cos(emb).astype(x.dtype), jnp.sin(emb).astype(x.dtype)
    return x * cos + rotate_half(x) * sin


def _dense(features: int, bias: bool, dtype, name: str) -> nn.Dense:
    return nn.Dense(features, use_bias=bias, dtype=dtype, param_dtype=jnp.float32, name=name)


class DecoderAttention(nn.Module):
    config: DecoderConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, positions, mask):
        cfg, dt = self.config, self.dtype
        b, s, _ = x.shape
        h, kv, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        q = _dense(h * hd, cfg.qkv_bias, dt, "q_proj")(x).reshape(b, s, h, hd)
        k = _dense(kv * hd, cfg.qkv_bias, dt, "k_proj")(x).reshape(b, s, kv, hd)
        v = _dense(kv * hd, cfg.qkv_bias, dt, "v_proj")(x).reshape(b, s, kv, hd)
        q, k = (rotary(t, positions, cfg.rope_theta, cfg.mrope_section) for t in (q, k))
        scale = (cfg.query_pre_attn_scalar or hd) ** -0.5
        q = q.reshape(b, s, kv, h // kv, hd)  # grouped-query: query head j uses kv head j // (h // kv)
        scores = jnp.einsum("bqkgd,bskd->bkgqs", q, k) * jnp.asarray(scale, dt)
        if cfg.attn_logit_softcapping is not None:
            cap = cfg.attn_logit_softcapping
            scores = jnp.tanh(scores / cap) * cap
        scores = jnp.where(mask[:, :, None], scores.astype(jnp.float32), jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1).astype(dt)  # float32 softmax, as HF
        out = jnp.einsum("bkgqs,bskd->bqkgd", probs, v).reshape(b, s, h * hd)
        return _dense(cfg.hidden_size, cfg.attention_bias, dt, "o_proj")(out)


class GatedMLP(nn.Module):
    config: DecoderConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        cfg, dt = self.config, self.dtype
        gate = _dense(cfg.intermediate_size, cfg.mlp_bias, dt, "gate_proj")(x)
        up = _dense(cfg.intermediate_size, cfg.mlp_bias, dt, "up_proj")(x)
        return _dense(cfg.hidden_size, cfg.mlp_bias, dt, "down_proj")(activation(cfg.hidden_act)(gate) * up)


class DecoderLayer(nn.Module):
    config: DecoderConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, positions, full_mask, sliding_mask, is_sliding):
        cfg, dt = self.config, self.dtype

        def norm(name):
            return RMSNorm(cfg.rms_norm_eps, cfg.gemma, dt, name=name)

        mask = full_mask if sliding_mask is None else jnp.where(is_sliding, sliding_mask, full_mask)
        h = DecoderAttention(cfg, dt, name="self_attn")(norm("input_layernorm")(x), positions, mask)
        if cfg.variant == "gemma2":
            x = x + norm("post_attention_layernorm")(h)
            h = GatedMLP(cfg, dt, name="mlp")(norm("pre_feedforward_layernorm")(x))
            return x + norm("post_feedforward_layernorm")(h), None
        x = x + h
        return x + GatedMLP(cfg, dt, name="mlp")(norm("post_attention_layernorm")(x)), None


class DecoderStack(nn.Module):
    config: DecoderConfig
    dtype: Any = jnp.float32
    scan_layers: bool = True
    remat: bool = False

    @nn.compact
    def __call__(self, x, positions, full_mask, sliding_mask):
        cfg = self.config
        return apply_layers(
            DecoderLayer,
            {"config": cfg, "dtype": self.dtype},
            cfg.num_hidden_layers,
            x,
            positions,
            full_mask,
            sliding_mask,
            scan=self.scan_layers,
            remat=self.remat,
            per_layer=jnp.asarray(cfg.sliding_layers),
        )


class DecoderLM(nn.Module):
    """`embed(ids)`, `decode(x, mask, positions, block_ids)` -> final-normed hidden, `logits(hidden)`."""

    config: DecoderConfig
    dtype: Any = jnp.float32
    scan_layers: bool = True
    remat: bool = False

    def setup(self):
        cfg = self.config
        self.embed_tokens = nn.Embed(
            cfg.vocab_size, cfg.hidden_size, embedding_init=nn.initializers.normal(0.02), param_dtype=jnp.float32
        )
        self.decoder = DecoderStack(cfg, self.dtype, self.scan_layers, self.remat)
        self.norm = RMSNorm(cfg.rms_norm_eps, cfg.gemma, self.dtype)
        if not cfg.tie_word_embeddings:
            self.lm_head = _dense(cfg.vocab_size, False, jnp.float32, "lm_head")

    def embed(self, token_ids: jax.Array) -> jax.Array:
        # HF casts the sqrt(D) scale to the weight dtype (float32 here) before multiplying.
        emb = self.embed_tokens(token_ids)
        if self.config.gemma:
            emb = emb * jnp.float32(self.config.embed_scale)
        return emb.astype(self.dtype)

    def decode(self, inputs_embeds, attention_mask, positions, block_ids=None):
        cfg = self.config
        full = decoder_mask(attention_mask, block_ids)
        sliding = decoder_mask(attention_mask, block_ids, cfg.sliding_window) if cfg.sliding_layers.any() else None
        x = self.decoder(inputs_embeds.astype(self.dtype), positions, full, sliding)
        return self.norm(x)

    def logits(self, hidden):
        cfg = self.config
        h = hidden.astype(jnp.float32)
        out = self.embed_tokens.attend(h) if cfg.tie_word_embeddings else self.lm_head(h)
        if cfg.final_logit_softcapping is not None:
            cap = cfg.final_logit_softcapping
            out = jnp.tanh(out / cap) * cap
        return out


class DecoderVLMBackbone(backbone_lib.Backbone):
    """The interface methods of a `vision_model` + projector + `DecoderLM` (`text_model`) family.

    Subclasses create the three submodules in `setup` and say how features reach the LM (`project`).
    """

    def project(self, features: jax.Array) -> jax.Array:
        raise NotImplementedError

    def vision_tower(self, pixel_values: jax.Array) -> jax.Array:
        """[N, H, W, 3] normalised -> the vision tower's last hidden state [N, patches, width]."""
        return self.vision_model(pixel_values)

    def encode_images(self, pixel_values: jax.Array) -> jax.Array:
        return self.project(self.vision_model(pixel_values))

    def embed_tokens(self, token_ids: jax.Array) -> jax.Array:
        return self.text_model.embed(token_ids)

    def decode(
        self, inputs_embeds, attention_mask=None, deterministic=True, positions=None, position_offset=0, block_ids=None
    ):
        b, s = inputs_embeds.shape[:2]
        if attention_mask is None:
            attention_mask = jnp.ones((b, s), bool)
        if positions is None:
            start = self.config.first_position + jnp.asarray(position_offset)
            positions = jnp.broadcast_to(start + jnp.arange(s)[None], (b, s))
        return self.text_model.decode(inputs_embeds, attention_mask, positions, block_ids)

    def lm_logits(self, hidden):
        return self.text_model.logits(hidden)
