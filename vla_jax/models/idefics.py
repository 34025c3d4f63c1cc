"""IDEFICS (HF's Flamingo reproduction) in Flax linen, number for number HF's `IdeficsForVisionText2Text`.

CLIP-like ViT (`vision_model`, the `vla_jax.models.vit` CLIP variant; HF `last_hidden_state`,
class token included, before `post_layernorm`) -> perceiver resampler (`perceiver_resampler`,
when `use_resampler`: learned latents; per block, LayerNorm'd latents attend to
[LayerNorm'd context ; latents] (bias-free q/k/v/output_proj, max-subtracted softmax), then a
LayerNorm -> ReLU MLP of 4x the vision width, both residual; a final LayerNorm) -> the media
vectors. The LLaMA LM (`text_model`) reads them through gated cross-attention layers, one
BEFORE every `cross_layer_interval`-th LM block: RMSNorm -> cross-attention (q from the text,
k/v from the media, no rotary, optional RMSNorm on q and k per head) -> rows attending to no
image zeroed -> `x + tanh(alpha_cross_attn) * .`, then RMSNorm -> gated MLP -> `x +
tanh(alpha_dense) * .` (the MLP runs for every row). Embedding and LM head are IDEFICS's
decoupled ones: ids >= vocab_size read `additional_embedding`; logits are [lm_head ;
additional_fc] concatenated.

Media masking (HF's `image_attention_mask`, as the IDEFICS processor builds it): every token
attends to the LAST image at or before it (the `<image>` token itself included); tokens before
the first image attend to no image. We pass this as `media_index` [B, S] (the image's index in
the row's media, -1 = none), media [B, M, Q, width].

Layout: the LM is `nn.scan`ned over cross-attention GROUPS (`text_model/layers`), each = one
gated cross-attention layer (`cross`) + `cross_layer_interval` LM blocks (`self_0`, ...); the
mapping table numbers HF's blocks `g * interval + j`.

Interface (`vla_jax.models.backbone`), `m` = HF `IdeficsModel`:
`vision_tower(px)` = `m.vision_model(px).last_hidden_state`; `encode_images(px)` =
`m.perceiver_resampler(that)` (or `that` without the resampler): HF's `image_hidden_states` per
image, in the VISION width; `embed_tokens(ids)` = `m.embed_tokens(ids)`; `decode(x, mask, p,
media=, media_index=)` = `m(inputs_embeds=x, attention_mask=mask, position_ids=p,
perceiver_embeddings=media, image_attention_mask=one_hot(media_index))`'s last hidden state;
`lm_logits(h)` = HF `lm_head(h)`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vla_jax.models import backbone as backbone_lib
from vla_jax.models.attention import decoder_mask
from vla_jax.models.decoder import DecoderLayer, GatedMLP, RMSNorm
from vla_jax.models.idefics_config import IdeficsConfig
from vla_jax.models.stacking import apply_layers
from vla_jax.models.vit import VisionTransformer

TORCH_LN_EPS = 1e-5  # the resampler's nn.LayerNorm default


def _dense(features: int, dtype, name: str) -> nn.Dense:
    return nn.Dense(features, use_bias=False, dtype=dtype, param_dtype=jnp.float32, name=name)


def _layer_norm(dtype, name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=TORCH_LN_EPS, dtype=dtype, param_dtype=jnp.float32, name=name)


def _attend(q, k, v, mask, dtype):
    """q [B, Q, H, hd] (already scaled), k/v [B, K, H, hd], mask [B, 1|H, Q, K] or None -> [B, Q, H * hd].
    Float32 softmax; masked scores at the float32 minimum (HF's additive mask: a fully masked row is
    uniform, never NaN)."""
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32)
    if mask is not None:
        scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(scores, axis=-1).astype(dtype)
    out = jnp.einsum("bhqk,bkhd->bqhd", probs, v)
    return out.reshape(*out.shape[:2], -1)


class PerceiverAttention(nn.Module):
    config: IdeficsConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, context, latents):
        p, dt = self.config.perceiver, self.dtype
        h, hd = p.resampler_n_heads, p.resampler_head_dim
        context = _layer_norm(dt, "context_layer_norm")(context)
        latents = _layer_norm(dt, "latents_layer_norm")(latents)
        both = jnp.concatenate([context, latents], axis=1)
        q = _dense(h * hd, dt, "q_proj")(latents).reshape(*latents.shape[:2], h, hd)
        k = _dense(h * hd, dt, "k_proj")(both).reshape(*both.shape[:2], h, hd)
        v = _dense(h * hd, dt, "v_proj")(both).reshape(*both.shape[:2], h, hd)
        if p.qk_layer_norms_perceiver:
            q = _layer_norm(dt, "q_layer_norm")(q)
            k = _layer_norm(dt, "k_layer_norm")(k)
        # HF subtracts the row max before the softmax: the same probabilities.
        out = _attend(q * jnp.asarray(hd**-0.5, dt), k, v, None, dt)
        return _dense(latents.shape[-1], dt, "output_proj")(out)


class PerceiverMLP(nn.Module):
    config: IdeficsConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        width = self.config.media_width
        h = _dense(4 * width, self.dtype, "fc")(_layer_norm(self.dtype, "ln")(x))
        return _dense(width, self.dtype, "c_proj")(jax.nn.relu(h))


class PerceiverBlock(nn.Module):
    config: IdeficsConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, latents, context):
        latents = PerceiverAttention(self.config, self.dtype, name="attn")(context, latents) + latents
        return PerceiverMLP(self.config, self.dtype, name="mlp")(latents) + latents, None


class PerceiverResampler(nn.Module):
    config: IdeficsConfig
    dtype: Any = jnp.float32
    scan_layers: bool = True
    remat: bool = False

    @nn.compact
    def __call__(self, context):
        cfg = self.config
        shape = (cfg.perceiver.resampler_n_latents, cfg.media_width)
        latents = self.param("latents", nn.initializers.normal(1.0), shape, jnp.float32)
        x = jnp.broadcast_to(latents.astype(self.dtype), (context.shape[0], *shape))
        x = apply_layers(
            PerceiverBlock,
            {"config": cfg, "dtype": self.dtype},
            cfg.perceiver.resampler_depth,
            x,
            context.astype(self.dtype),
            scan=self.scan_layers,
            remat=self.remat,
        )
        return _layer_norm(self.dtype, "layer_norm")(x)


def _alpha_init(config: IdeficsConfig):
    if config.alpha_initializer == "zeros":
        return nn.initializers.zeros
    if config.alpha_initializer == "ones":
        return nn.initializers.ones
    return nn.initializers.normal(config.alphas_initializer_range)


class GatedCrossAttentionLayer(nn.Module):
    """HF `IdeficsGatedCrossAttentionLayer` (module docstring)."""

    config: IdeficsConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, media, media_mask, gate):
        cfg, dt = self.config, self.dtype
        t = cfg.text
        b, s, d = x.shape
        h, hd = t.num_attention_heads, t.head_dim

        def norm(name):
            return RMSNorm(t.rms_norm_eps, False, dt, name=name)

        y = norm("input_layernorm")(x)
        q = _dense(h * hd, dt, "q_proj")(y).reshape(b, s, h, hd)
        k = _dense(h * hd, dt, "k_proj")(media).reshape(b, media.shape[1], h, hd)
        v = _dense(h * hd, dt, "v_proj")(media).reshape(b, media.shape[1], h, hd)
        if cfg.qk_layer_norms:
            q, k = norm("q_layer_norm")(q), norm("k_layer_norm")(k)
        out = _dense(d, dt, "o_proj")(_attend(q * jnp.asarray(hd**-0.5, dt), k, v, media_mask, dt))
        out = jnp.where(gate[..., None], out, jnp.zeros((), dt))
        shape = (1, 1, d) if cfg.alpha_type == "vector" else (1,)
        alpha_attn = self.param("alpha_cross_attn", _alpha_init(cfg), shape, jnp.float32)
        alpha_dense = self.param("alpha_dense", _alpha_init(cfg), shape, jnp.float32)
        x = x + jnp.tanh(alpha_attn).astype(dt).reshape(-1) * out
        y = GatedMLP(t, dt, name="mlp")(norm("post_attention_layernorm")(x))
        return x + jnp.tanh(alpha_dense).astype(dt).reshape(-1) * y


class CrossAttentionGroup(nn.Module):
    """One gated cross-attention layer, then `cross_layer_interval` LLaMA blocks."""

    config: IdeficsConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, positions, mask, media, media_mask, gate):
        cfg = self.config
        x = GatedCrossAttentionLayer(cfg, self.dtype, name="cross")(x, media, media_mask, gate)
        for j in range(cfg.cross_layer_interval):
            x, _ = DecoderLayer(cfg.text, self.dtype, name=f"self_{j}")(x, positions, mask, None, None)
        return x, None


class IdeficsLM(nn.Module):
    """Decoupled embedding, the grouped LM, final RMSNorm, decoupled head."""

    config: IdeficsConfig
    dtype: Any = jnp.float32
    scan_layers: bool = True
    remat: bool = False

    def setup(self):
        cfg = self.config
        t, extra = cfg.text, cfg.additional_vocab_size
        init = nn.initializers.normal(0.02)
        self.embed_tokens = nn.Embed(t.vocab_size, t.hidden_size, embedding_init=init, param_dtype=jnp.float32)
        if extra:
            self.additional_embedding = nn.Embed(extra, t.hidden_size, embedding_init=init, param_dtype=jnp.float32)
        self.norm = RMSNorm(t.rms_norm_eps, False, self.dtype)
        if not t.tie_word_embeddings:
            self.lm_head = _dense(t.vocab_size, jnp.float32, "lm_head")
            if extra:
                self.additional_fc = _dense(extra, jnp.float32, "additional_fc")

    def embed(self, token_ids):
        n = self.config.text.vocab_size
        emb = self.embed_tokens(jnp.where(token_ids < n, token_ids, 0))
        if self.config.additional_vocab_size:
            extra = self.additional_embedding(jnp.clip(token_ids - n, 0, self.config.additional_vocab_size - 1))
            emb = jnp.where((token_ids >= n)[..., None], extra, emb)
        return emb.astype(self.dtype)

    @nn.compact
    def decode(self, inputs_embeds, attention_mask, positions, media, media_index):
        cfg, dt = self.config, self.dtype
        b, m, q, width = media.shape
        # slot s may read media vector (i, j) iff media_index[s] == i; gate: it reads any image at all
        media_mask = (media_index[:, :, None] == jnp.repeat(jnp.arange(m), q)[None, None])[:, None]
        x = apply_layers(
            CrossAttentionGroup,
            {"config": cfg, "dtype": dt},
            cfg.num_cross_layers,
            inputs_embeds.astype(dt),
            positions,
            decoder_mask(attention_mask),
            media.reshape(b, m * q, width).astype(dt),
            media_mask,
            media_index >= 0,
            scan=self.scan_layers,
            remat=self.remat,
        )
        return self.norm(x)

    def logits(self, hidden):
        h = hidden.astype(jnp.float32)
        if self.config.text.tie_word_embeddings:
            parts = [self.embed_tokens.attend(h)]
            if self.config.additional_vocab_size:
                parts.append(self.additional_embedding.attend(h))
        else:
            parts = [self.lm_head(h)]
            if self.config.additional_vocab_size:
                parts.append(self.additional_fc(h))
        return jnp.concatenate(parts, axis=-1)


class IdeficsBackbone(backbone_lib.Backbone):
    config: IdeficsConfig

    def setup(self):
        cfg, dt = self.config, self.config.compute_dtype
        self.vision_model = VisionTransformer(cfg.vision, dt, cfg.scan_layers, cfg.remat)
        if cfg.use_resampler:
            self.perceiver_resampler = PerceiverResampler(cfg, dt, cfg.scan_layers, cfg.remat)
        self.text_model = IdeficsLM(cfg, dt, cfg.scan_layers, cfg.remat)

    def vision_tower(self, pixel_values):
        hidden = self.vision_model(pixel_values)
        if self.is_initializing():  # in every checkpoint (HF's pooled output uses it), never in the features
            self.vision_model.post_layernorm(hidden[:, 0])
        return hidden

    def encode_images(self, pixel_values):
        """[N, H, W, 3] -> media [N, image_tokens, vision width] (cross-attention keys/values, NOT LM inputs)."""
        hidden = self.vision_tower(pixel_values)
        return self.perceiver_resampler(hidden) if self.config.use_resampler else hidden

    def embed_tokens(self, token_ids):
        return self.text_model.embed(token_ids)

    def decode(
        self,
        inputs_embeds,
        attention_mask=None,
        deterministic=True,
        positions=None,
        position_offset=0,
        block_ids=None,
        media=None,
        media_index=None,
    ):
        """`media` [B, M, Q, width] and `media_index` [B, S] (module docstring); without media every slot
        reads no image (HF with an all-zero `image_attention_mask`: the cross layers' MLPs still run)."""
        b, s = inputs_embeds.shape[:2]
        if attention_mask is None:
            attention_mask = jnp.ones((b, s), bool)
        if positions is None:
            start = self.config.first_position + jnp.asarray(position_offset)
            positions = jnp.broadcast_to(start + jnp.arange(s)[None], (b, s))
        if media is None:
            media = jnp.zeros((b, 1, 1, self.config.media_width), inputs_embeds.dtype)
            media_index = jnp.full((b, s), -1, jnp.int32)
        elif media_index is None:
            raise ValueError("idefics decode: media needs media_index [B, S] (which image each slot reads, -1 none)")
        return self.text_model.decode(inputs_embeds, attention_mask, positions, media, media_index)

    def lm_logits(self, hidden):
        return self.text_model.logits(hidden)

    def __call__(self, pixel_values, token_ids):
        """[<image> ; tokens] reading the image by cross-attention -> logits (touches every parameter)."""
        media = self.encode_images(pixel_values)[:, None]
        embeds = self.embed_tokens(token_ids)
        index = jnp.zeros(token_ids.shape, jnp.int32)
        return self.lm_logits(self.decode(embeds, media=media, media_index=index))


FAMILY = backbone_lib.Family(
    model_type="idefics",
    config_cls=IdeficsConfig,
    module_cls=IdeficsBackbone,
    table_module="vla_jax.convert.idefics_table",
    hf_class="IdeficsForVisionText2Text",
)
