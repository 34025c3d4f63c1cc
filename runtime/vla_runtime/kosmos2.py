"""Kosmos-2 backbone for inference in plain torch (no transformers import).

The module tree and parameter names are exactly those of Hugging Face's
`Kosmos2Model` (`vision_model.model.*`, `text_model.model.*`,
`image_to_text_projection.*`), so a HF state dict loads as is and the export
mapping is the inverse of vla_jax/convert's table. The math follows HF's eager
path line by line (pre-LN CLIP vision tower, latent-query cross attention, a
decoder with `inner_attn_ln` and an FFN layer norm, sinusoidal positions
starting at `pad_token_id + 1`) so outputs agree to float32 rounding.

Only APIs that exist in torch 2.1 are used.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn


@dataclasses.dataclass(frozen=True)
class VisionConfig:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    image_size: int
    patch_size: int
    layer_norm_eps: float = 1e-5
    hidden_act: str = "quick_gelu"


@dataclasses.dataclass(frozen=True)
class TextConfig:
    vocab_size: int
    embed_dim: int
    layers: int
    ffn_dim: int
    attention_heads: int
    layer_norm_eps: float = 1e-5
    scale_embedding: bool = True
    pad_token_id: int = 1
    max_position_embeddings: int = 2048
    activation_function: str = "gelu"


@dataclasses.dataclass(frozen=True)
class BackboneConfig:
    vision: VisionConfig
    text: TextConfig
    latent_query_num: int = 64

    @classmethod
    def from_hf_dict(cls, d: dict) -> BackboneConfig:
        """Reads the HF `config.json` layout (`vision_config`, `text_config`, `latent_query_num`).

        Unknown keys are ignored on purpose: HF configs carry many training-only fields.
        """

        def pick(klass, sub: dict):
            names = {f.name for f in dataclasses.fields(klass)}
            missing = [
                f.name for f in dataclasses.fields(klass) if f.name not in sub and f.default is dataclasses.MISSING
            ]
            if missing:
                raise KeyError(f"backbone config is missing {missing} in {klass.__name__}")
            return klass(**{k: v for k, v in sub.items() if k in names})

        return cls(
            vision=pick(VisionConfig, d["vision_config"]),
            text=pick(TextConfig, d["text_config"]),
            latent_query_num=int(d.get("latent_query_num", 64)),
        )


def _activation(name: str):
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return F.gelu  # exact erf gelu, as HF's "gelu"
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise ValueError(f"unsupported activation {name!r} in the backbone config")


def _attend(q, k, v, mask: torch.Tensor | None, scale: float) -> torch.Tensor:
    """Eager attention on [B, H, S, Dh]; `mask` is additive [B or 1, 1, Sq, Sk] or None.

    Written out (not SDPA) so results are the same on every torch >= 2.1 backend
    and match HF's eager kernel bit for bit in float32.
    """
    w = torch.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        w = w + mask
    w = torch.softmax(w, dim=-1)
    return torch.matmul(w, v)


def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, s, d = x.shape
    return x.view(b, s, heads, d // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, s, dh = x.shape
    return x.transpose(1, 2).reshape(b, s, h * dh)


# ----------------------------------------------------------------------------- vision


class VisionEmbeddings(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.class_embedding = nn.Parameter(torch.zeros(c.hidden_size))
        self.patch_embedding = nn.Conv2d(3, c.hidden_size, c.patch_size, c.patch_size, bias=False)
        self.position_embedding = nn.Embedding((c.image_size // c.patch_size) ** 2 + 1, c.hidden_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.patch_embedding(pixel_values.to(self.patch_embedding.weight.dtype))
        x = x.flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        return torch.cat([cls, x], dim=1) + self.position_embedding.weight.to(x.dtype)[None]


class VisionAttention(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        d = c.hidden_size
        self.heads = c.num_attention_heads
        self.scale = (d // self.heads) ** -0.5
        self.k_proj, self.v_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.q_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (_split(p(x), self.heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        return self.out_proj(_merge(_attend(q, k, v, None, self.scale)))


class VisionMLP(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.act = _activation(c.hidden_act)
        self.fc1 = nn.Linear(c.hidden_size, c.intermediate_size)
        self.fc2 = nn.Linear(c.intermediate_size, c.hidden_size)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class VisionLayer(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.self_attn = VisionAttention(c)
        self.layer_norm1 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.mlp = VisionMLP(c)
        self.layer_norm2 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionEncoder(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.layers = nn.ModuleList([VisionLayer(c) for _ in range(c.num_hidden_layers)])


class VisionTransformer(nn.Module):
    def __init__(self, c: VisionConfig):
        super().__init__()
        self.embeddings = VisionEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)  # sic: HF's spelling
        self.encoder = VisionEncoder(c)
        self.post_layernorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """NCHW CLIP-normalised pixels -> last hidden state [N, 1 + patches, hidden] (before post-LN)."""
        x = self.pre_layrnorm(self.embeddings(pixel_values))
        for layer in self.encoder.layers:
            x = layer(x)
        return x


# ----------------------------------------------------------------------------- text


class TextAttention(nn.Module):
    """Decoder self attention (with `inner_attn_ln`) or the projection's cross attention."""

    def __init__(self, c: TextConfig, inner_ln: bool):
        super().__init__()
        d = c.embed_dim
        self.heads = c.attention_heads
        self.scale = (d // self.heads) ** -0.5
        self.k_proj, self.v_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.q_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.inner_attn_ln = nn.LayerNorm(d, eps=c.layer_norm_eps) if inner_ln else None

    def forward(
        self,
        x: torch.Tensor,
        kv_input: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
    ):
        src = x if kv_input is None else kv_input
        q = _split(self.q_proj(x), self.heads)
        k = _split(self.k_proj(src), self.heads)
        v = _split(self.v_proj(src), self.heads)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        out = _merge(_attend(q, k, v, mask, self.scale))
        if self.inner_attn_ln is not None:
            out = self.inner_attn_ln(out)
        return self.out_proj(out), (k, v)


class TextFFN(nn.Module):
    def __init__(self, c: TextConfig):
        super().__init__()
        self.act = _activation(c.activation_function)
        self.fc1 = nn.Linear(c.embed_dim, c.ffn_dim)
        self.fc2 = nn.Linear(c.ffn_dim, c.embed_dim)
        self.ffn_layernorm = nn.LayerNorm(c.ffn_dim, eps=c.layer_norm_eps)

    def forward(self, x):
        return self.fc2(self.ffn_layernorm(self.act(self.fc1(x))))


class TextBlock(nn.Module):
    def __init__(self, c: TextConfig):
        super().__init__()
        self.self_attn = TextAttention(c, inner_ln=True)
        self.self_attn_layer_norm = nn.LayerNorm(c.embed_dim, eps=c.layer_norm_eps)
        self.ffn = TextFFN(c)
        self.final_layer_norm = nn.LayerNorm(c.embed_dim, eps=c.layer_norm_eps)

    def forward(self, x, mask, past):
        h, kv = self.self_attn(self.self_attn_layer_norm(x), mask=mask, past=past)
        x = x + h
        return x + self.ffn(self.final_layer_norm(x)), kv


def sinusoidal_table(num: int, dim: int, padding_idx: int | None) -> torch.Tensor:
    """fairseq/M2M100 table as HF builds it: [sin | cos] halves, the padding row zeroed."""
    half = dim // 2
    step = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.int64).float() * -step)
    ang = torch.arange(num, dtype=torch.int64).float().unsqueeze(1) * freqs.unsqueeze(0)
    table = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1).view(num, -1)
    if dim % 2 == 1:
        table = torch.cat([table, torch.zeros(num, 1)], dim=1)
    if padding_idx is not None:
        table[padding_idx, :] = 0
    return table


class KVCache:
    """Per-layer keys/values of everything decoded so far, plus the padding mask of those positions.

    The interleaved structure appends one [image, text, action] block per control
    step; positions continue from `length`, exactly as a full re-run would number them.
    """

    def __init__(self) -> None:
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        self.key_mask: torch.Tensor | None = None  # bool [B, length]

    @property
    def length(self) -> int:
        return 0 if self.key_mask is None else int(self.key_mask.shape[1])


class TextTransformer(nn.Module):
    def __init__(self, c: TextConfig):
        super().__init__()
        self.config = c
        self.embed_scale = math.sqrt(c.embed_dim) if c.scale_embedding else 1.0
        self.embed_tokens = nn.Embedding(c.vocab_size, c.embed_dim)
        self.layers = nn.ModuleList([TextBlock(c) for _ in range(c.layers)])
        self.layer_norm = nn.LayerNorm(c.embed_dim, eps=c.layer_norm_eps)
        # Not a parameter (HF keeps it as a non-persistent buffer too); grows on demand.
        self.register_buffer(
            "_positions", sinusoidal_table(c.max_position_embeddings + 2, c.embed_dim, c.pad_token_id), persistent=False
        )

    def reset_buffers(self) -> None:
        """Recomputes the position table on the embedding's device (e.g. after a meta-device build)."""
        self._positions = sinusoidal_table(
            self.config.max_position_embeddings + 2, self.config.embed_dim, self.config.pad_token_id
        ).to(self.embed_tokens.weight.device)

    def table(self, upto: int) -> torch.Tensor:
        """The sinusoidal table with at least `upto` rows (grown on demand, like HF's)."""
        if upto > self._positions.shape[0]:
            self._positions = sinusoidal_table(upto + 2, self.config.embed_dim, self.config.pad_token_id).to(
                self._positions.device
            )
        return self._positions

    def default_positions(self, start: int, length: int) -> torch.Tensor:
        """HF's inputs_embeds path: ids pad+1 .. pad+length, shifted by what the cache holds."""
        first = self.config.pad_token_id + 1 + start
        return torch.arange(first, first + length, device=self._positions.device)

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """inputs_embeds [B, S, D] already scaled (see `Kosmos2Backbone.embed_tokens`), mask bool [B, S].

        Returns the last hidden state after the final layer norm; when `cache` is
        given the new keys/values are appended to it in place. `positions` [B, S]
        overrides HF's default numbering (pad_token_id + 1 + cache length + [0..S)).
        """
        b, s, _ = inputs_embeds.shape
        start = cache.length if cache is not None else 0
        dtype = inputs_embeds.dtype
        if positions is None:
            positions = self.default_positions(start, s)[None].expand(b, s)
        positions = positions.to(self._positions.device)
        table = self.table(int(positions.max()) + 1)
        x = inputs_embeds + table[positions].to(device=inputs_embeds.device, dtype=dtype)
        if attention_mask is None:
            attention_mask = torch.ones(b, s, dtype=torch.bool, device=x.device)
        key_mask = attention_mask.bool()
        if cache is not None and cache.key_mask is not None:
            key_mask = torch.cat([cache.key_mask, key_mask], dim=1)
        total = key_mask.shape[1]
        causal = torch.ones(s, total, dtype=torch.bool, device=x.device).tril(diagonal=total - s)
        allowed = causal[None, None] & key_mask[:, None, None, :]
        mask = torch.zeros(allowed.shape, dtype=dtype, device=x.device)
        mask = mask.masked_fill(~allowed, torch.finfo(dtype).min)
        new_layers = []
        for i, layer in enumerate(self.layers):
            past = cache.layers[i] if cache is not None and cache.layers else None
            x, kv = layer(x, mask, past)
            new_layers.append(kv)
        if cache is not None:
            cache.layers = new_layers
            cache.key_mask = key_mask
        return self.layer_norm(x)


# ----------------------------------------------------------------------------- projection


class ImageToTextProjection(nn.Module):
    def __init__(self, c: BackboneConfig):
        super().__init__()
        self.dense = nn.Linear(c.vision.hidden_size, c.text.embed_dim)
        self.latent_query = nn.Parameter(torch.zeros(c.latent_query_num, c.text.embed_dim))
        self.x_attn = TextAttention(c.text, inner_ln=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.dense(features)
        q = self.latent_query.to(h.dtype).unsqueeze(0).expand(h.shape[0], -1, -1)
        out, _ = self.x_attn(q, kv_input=torch.cat([h, q], dim=1))
        return out


class _Holder(nn.Module):
    """Gives a sub-tower the `.model.` level that HF's state-dict keys have."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model


class Kosmos2Backbone(nn.Module):
    """Vision tower + image-to-text projection + text decoder; HF parameter names."""

    def __init__(self, config: BackboneConfig):
        super().__init__()
        self.config = config
        self.vision_model = _Holder(VisionTransformer(config.vision))
        self.text_model = _Holder(TextTransformer(config.text))
        self.image_to_text_projection = ImageToTextProjection(config)

    def vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The vision tower's output after post-LN: [N, 1 + patches, hidden]."""
        vm = self.vision_model.model
        return vm.post_layernorm(vm(pixel_values))  # pyright: ignore  (nn.Module attributes)

    def image_to_text(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """HF's `image_embeds`: NCHW CLIP-normalised pixels -> [N, latent_query_num, embed_dim], unscaled."""
        feats = self.vision_features(pixel_values)
        feats = F.normalize(feats.float(), dim=-1).to(feats.dtype)
        return self.image_to_text_projection(feats)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Image tokens ready to sit in the decoder's input: scaled like `embed_tokens` (as vla_jax)."""
        return self.image_to_text(pixel_values) * self.text_model.model.embed_scale  # pyright: ignore  (nn.Module attributes)

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        tm = self.text_model.model
        return tm.embed_tokens(token_ids) * tm.embed_scale  # pyright: ignore  (nn.Module attributes)

    def decode(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Causal decoder over already-scaled embeddings -> last hidden state after the final LN."""
        return self.text_model.model(inputs_embeds, attention_mask, cache, positions)

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Tied LM head, in float32 like vla_jax's."""
        return hidden.float() @ self.text_model.model.embed_tokens.weight.float().t()  # pyright: ignore  (nn.Module attributes)


def parameter_count(config: BackboneConfig) -> int:
    """Parameters of the backbone, counted on the meta device (no memory is allocated)."""
    with torch.device("meta"):
        model = Kosmos2Backbone(config)
    return sum(p.numel() for p in model.parameters())
