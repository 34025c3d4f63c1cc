"""One Vision Transformer for every family: the CLIP variant and the SigLIP variant.

                    CLIP (Kosmos-2, CLIPVisionModel)     SigLIP (PaliGemma, SmolVLM)
    patch conv      no bias                              bias
    class token     yes (position 0)                     no
    pre-LN          `pre_layrnorm`                       none
    output          encoder last hidden state            `post_layernorm`(encoder output)
                    (HF `last_hidden_state`; Kosmos-2
                    applies `post_layernorm` itself)
    activation      quick_gelu (config `hidden_act`)     gelu_pytorch_tanh (config `hidden_act`)

Both: learned absolute positions, pre-LN encoder layers (`layer_norm1` -> self-attention with
biased q/k/v/out projections -> residual, `layer_norm2` -> fc1 -> act -> fc2 -> residual).
Parameter names follow HF's modules (`patch_embedding`, `position_embedding`, `encoder/layers/...`)
so the mapping tables read one-to-one. Inputs are NHWC; the patch grid is flattened row-major, the
order of HF's `flatten(2)` on NCHW.

SmolVLM's tower is a NaViT-style SigLIP whose position ids come from a float32 `bucketize` of the
patch grid; for a full, square image that equals `arange` for the released grids (32 x 32 at
512 px / 16, 27 x 27 at 384 px / 14), which is what we use. (torch's float rounding shifts a few
ids by one for some other grid sides, e.g. 19 or 25; verify-hf would show it.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vla_jax.errors import VLAJaxError
from vla_jax.models.attention import MultiHeadAttention
from vla_jax.models.stacking import apply_layers


def gelu_exact(x: jax.Array) -> jax.Array:
    """torch's exact GELU, x * (1 + erf(x / sqrt 2)) / 2, written with `erf`: `jax.nn.gelu(approximate=False)`
    uses `erfc`, whose XLA:CPU kernels are slower inside the train step (bench/RESULTS.md section 1f: the
    benchmark step 0.96x with this form); the two agree within 1e-6 over [-8, 8] (tests/test_activations.py)."""
    return 0.5 * x * (1.0 + jax.lax.erf(x * np.float32(1.0 / np.sqrt(2.0))))


ACTIVATIONS = {
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
    "gelu": gelu_exact,
    "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "gelu_fast": lambda x: jax.nn.gelu(x, approximate=True),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
}


def activation(name: str):
    if name not in ACTIVATIONS:
        raise VLAJaxError(f"activation {name!r} is not supported; use one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    """Defaults: CLIP ViT-L/14 at 224 px (= Kosmos-2's own tower, = HF `Kosmos2VisionConfig` defaults)."""

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    image_size: int = 224
    patch_size: int = 14
    layer_norm_eps: float = 1e-5
    hidden_act: str = "quick_gelu"
    variant: str = "clip"  # "clip" | "siglip" (table in the module docstring)

    def __post_init__(self):
        if self.variant not in ("clip", "siglip"):
            raise VLAJaxError(f"vision variant={self.variant!r}; use 'clip' or 'siglip'")
        if self.image_size % self.patch_size:
            raise VLAJaxError(f"vision image_size={self.image_size} is not a multiple of patch_size={self.patch_size}")
        if self.hidden_size % self.num_attention_heads:
            raise VLAJaxError(
                f"vision hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}"
            )

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid**2

    @property
    def num_tokens(self) -> int:
        """Length of the encoder's output sequence (class token included for CLIP)."""
        return self.num_patches + (self.variant == "clip")

    def to_hf_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("variant")
        return {**d, "num_channels": 3}

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], variant: str, where: str) -> ViTConfig:
        """From a fully populated HF vision sub-config dict (transformers' own parsing filled the defaults)."""
        d = dict(d)
        for key in ("image_size", "patch_size"):
            if isinstance(d.get(key), (list, tuple)):
                vals = list(d[key])
                if len(set(vals)) != 1:
                    raise VLAJaxError(f"{where}.{key}={vals}: only square images/patches are supported")
                d[key] = vals[0]
        if d.get("num_channels", 3) != 3:
            raise VLAJaxError(f"{where}.num_channels={d['num_channels']}: only RGB (3) is supported")
        known = {f.name for f in dataclasses.fields(cls)} - {"variant"}
        return cls(**{k: d[k] for k in known if k in d}, variant=variant)


def _layer_norm(eps: float, dtype, name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=eps, dtype=dtype, param_dtype=jnp.float32, name=name)


def _dense(features: int, dtype, name: str) -> nn.Dense:
    return nn.Dense(features, dtype=dtype, param_dtype=jnp.float32, name=name)


class ViTEncoderLayer(nn.Module):
    config: ViTConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, _unused=None):
        cfg = self.config
        h = _layer_norm(cfg.layer_norm_eps, self.dtype, "layer_norm1")(x)
        x = x + MultiHeadAttention(cfg.num_attention_heads, dtype=self.dtype, name="self_attn")(h)
        h = _layer_norm(cfg.layer_norm_eps, self.dtype, "layer_norm2")(x)
        h = _dense(cfg.intermediate_size, self.dtype, "fc1")(h)
        h = activation(cfg.hidden_act)(h)
        h = _dense(cfg.hidden_size, self.dtype, "fc2")(h)
        return x + h, None


class ViTEncoder(nn.Module):
    config: ViTConfig
    dtype: Any = jnp.float32
    scan_layers: bool = True
    remat: bool = False

    @nn.compact
    def __call__(self, x):
        cfg = self.config
        return apply_layers(
            ViTEncoderLayer,
            {"config": cfg, "dtype": self.dtype},
            cfg.num_hidden_layers,
            x,
            scan=self.scan_layers,
            remat=self.remat,
        )


class VisionTransformer(nn.Module):
    """`__call__(pixels NHWC)` -> HF's `last_hidden_state` of the variant (module docstring).

    CLIP keeps `post_layernorm` as a submodule for callers that apply it (Kosmos-2's projection path).
    """

    config: ViTConfig
    dtype: Any = jnp.float32
    scan_layers: bool = True
    remat: bool = False

    def setup(self):
        cfg, dt = self.config, self.dtype
        clip = cfg.variant == "clip"
        self.patch_embedding = nn.Conv(
            cfg.hidden_size,
            (cfg.patch_size, cfg.patch_size),
            strides=(cfg.patch_size, cfg.patch_size),
            padding="VALID",
            use_bias=not clip,
            dtype=dt,
            param_dtype=jnp.float32,
        )
        if clip:
            self.class_embedding = self.param(
                "class_embedding", nn.initializers.normal(cfg.hidden_size**-0.5), (cfg.hidden_size,), jnp.float32
            )
            self.pre_layrnorm = _layer_norm(cfg.layer_norm_eps, dt, "pre_layrnorm")
        self.position_embedding = nn.Embed(
            cfg.num_tokens, cfg.hidden_size, embedding_init=nn.initializers.normal(0.02), param_dtype=jnp.float32
        )
        self.encoder = ViTEncoder(cfg, dt, self.scan_layers, self.remat)
        self.post_layernorm = _layer_norm(cfg.layer_norm_eps, dt, "post_layernorm")

    def __call__(self, pixel_values: jax.Array) -> jax.Array:
        cfg, dt = self.config, self.dtype
        n, h, w, c = pixel_values.shape
        if (h, w, c) != (cfg.image_size, cfg.image_size, 3):
            raise ValueError(
                f"pixel_values must be [N, {cfg.image_size}, {cfg.image_size}, 3] (NHWC); "
                f"got {tuple(pixel_values.shape)}"
            )
        x = self.patch_embedding(pixel_values.astype(dt)).reshape(n, -1, cfg.hidden_size)
        if cfg.variant == "clip":
            cls_tok = jnp.broadcast_to(self.class_embedding.astype(dt), (n, 1, cfg.hidden_size))
            x = jnp.concatenate([cls_tok, x], axis=1)
        x = x + self.position_embedding.embedding.astype(dt)[None]
        if cfg.variant == "clip":
            return self.encoder(self.pre_layrnorm(x))
        return self.post_layernorm(self.encoder(x))
