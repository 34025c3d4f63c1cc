"""The Qwen2.5-VL vision tower in Flax linen, number for number HF's `Qwen2_5_VisionTransformerPretrainedModel`.

For one fixed-size image per frame (robot cameras), everything HF computes from `grid_thw` at run
time is static here and built once with numpy:

- Patches: HF's processor cuts the image into `patch_size` patches and orders them block-major over
  the `spatial_merge_size` x `spatial_merge_size` merge blocks (`(bh, bw, mh, mw)`), each frame
  repeated `temporal_patch_size` times (a still image) for the Conv3d patch embedding. A Conv3d
  over identical frames is a 2-D patch projection with the kernel summed over time; the parameter
  stays the HF-shaped 3-D kernel, so conversion and export are one-to-one.
- 2-D rotary positions: head_dim / 2 rotary frequencies per axis pair, `[h-angles, w-angles]`
  concatenated twice (rotate-half over the whole head), HF's axial `Qwen2_5_VLVisionRotaryEmbedding`.
- Window attention: the merge units are regrouped into windows of `window_size` pixels
  (`window_size / patch_size / spatial_merge_size` merge units per side, the last row / column of
  windows smaller when the grid does not divide); the sequence is permuted into window order, as
  HF does, and every block except `fullatt_block_indexes` attends only inside its window (a block
  mask; HF splits the sequence at `cu_window_seqlens`, the same softmax).
- Blocks: RMSNorm (eps 1e-6) -> attention (fused biased `qkv`, biased `proj`) -> residual,
  RMSNorm -> SwiGLU MLP (biased gate/up/down, `hidden_act`) -> residual.
- Merger: RMSNorm `ln_q`, the 4 (= merge^2) consecutive tokens of a merge unit concatenated,
  Linear -> exact GELU -> Linear to the LM width, then the window permutation undone: tokens come
  out row-major over the merged grid, the order the LM's image placeholders take them.

Qwen2-VL's tower (`variant="qwen2_vl"`, HF `Qwen2VisionTransformerPretrainedModel`) is the same
with three differences: LayerNorms (eps 1e-6, with bias) instead of the RMSNorms, an fc1 -> act
(quick_gelu) -> fc2 MLP instead of SwiGLU, and no windows (every block full attention, no
permutation).

`__call__` returns HF's `last_hidden_state` (the blocks' output, still in window order); `merge`
is HF's `pooler_output` (= `get_image_features`). No learned position table: the image size is a
run-time choice (`image_size`, a multiple of `patch_size * spatial_merge_size`), not part of the
checkpoint; HF's processor `smart_resize`s to multiples of 28 px as well, so 224 and 448 px frames
reach both sides unresized.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vla_jax.errors import VLAJaxError
from vla_jax.models.decoder import RMSNorm, rotate_half
from vla_jax.models.stacking import apply_layers
from vla_jax.models.vit import activation, gelu_exact

VISION_NORM_EPS = 1e-6  # HF hard-codes it for the vision blocks and the merger
VARIANTS = ("qwen2_5_vl", "qwen2_vl")


@dataclasses.dataclass(frozen=True)
class QwenViTConfig:
    """HF `Qwen2_5_VLVisionConfig` keys (depth -> num_hidden_layers, num_heads -> num_attention_heads) plus our
    `image_size`. Defaults: Qwen2.5-VL-3B's tower at 224 px."""

    hidden_size: int = 1280
    intermediate_size: int = 3420
    num_hidden_layers: int = 32
    num_attention_heads: int = 16
    patch_size: int = 14
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    window_size: int = 112
    out_hidden_size: int = 2048
    fullatt_block_indexes: tuple[int, ...] = (7, 15, 23, 31)
    hidden_act: str = "silu"
    rope_theta: float = 10000.0
    tokens_per_second: int = 2  # video only; kept for the config round trip
    image_size: int = 224  # ours: the fixed frame side (HF's processor sizes images per call)
    variant: str = "qwen2_5_vl"  # or "qwen2_vl" (module docstring)

    def __post_init__(self):
        def bad(msg):
            raise VLAJaxError(f"{self.variant} vision config: {msg}")

        if self.variant not in VARIANTS:
            bad(f"variant={self.variant!r}; use one of {VARIANTS}")

        unit = self.patch_size * self.spatial_merge_size
        if self.image_size % unit:
            bad(f"image_size={self.image_size} must be a multiple of patch_size * spatial_merge_size = {unit}")
        if self.hidden_size % self.num_attention_heads or (self.hidden_size // self.num_attention_heads) % 4:
            bad(f"hidden_size / num_attention_heads must be a multiple of 4 (2-D rotary), got {self.head_dim}")
        if not self.windowed:  # Qwen2-VL: no windows; canonical values so equal towers compare equal
            object.__setattr__(self, "window_size", 0)
            object.__setattr__(self, "fullatt_block_indexes", ())
        elif self.window_size < unit:
            bad(f"window_size={self.window_size} is smaller than one merge unit ({unit} px)")
        if not self.windowed and self.intermediate_size % self.hidden_size:
            bad(
                f"intermediate_size={self.intermediate_size} must be a multiple of hidden_size (HF's integer mlp_ratio)"
            )
        # A shallower copy (tiny configs, --num-layers) keeps the full-attention blocks among its layers.
        full = tuple(int(i) for i in self.fullatt_block_indexes if 0 <= int(i) < self.num_hidden_layers)
        object.__setattr__(self, "fullatt_block_indexes", full)
        activation(self.hidden_act)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def grid(self) -> int:  # patches per side
        return self.image_size // self.patch_size

    @property
    def merged_grid(self) -> int:  # LM tokens per side
        return self.grid // self.spatial_merge_size

    @property
    def num_patches(self) -> int:
        return self.grid**2

    @property
    def num_tokens(self) -> int:  # vectors per image after the merger
        return self.merged_grid**2

    @property
    def windowed(self) -> bool:
        return self.variant == "qwen2_5_vl"

    @property
    def full_attention_layers(self) -> np.ndarray:
        if not self.windowed:
            return np.ones(self.num_hidden_layers, bool)
        return np.isin(np.arange(self.num_hidden_layers), self.fullatt_block_indexes)

    @classmethod
    def from_hf_qwen2_vl_dict(cls, d: dict[str, Any], image_size: int, where: str) -> QwenViTConfig:
        """From a `Qwen2VLVisionConfig` dict (embed_dim = width, hidden_size = the LM width, mlp_ratio)."""
        width = int(d["embed_dim"])
        if (width * float(d["mlp_ratio"])) % 1:
            raise VLAJaxError(f"{where}: embed_dim * mlp_ratio = {width * float(d['mlp_ratio'])} is not an integer")
        renamed = {
            **d,
            "hidden_size": width,
            "out_hidden_size": int(d["hidden_size"]),
            "intermediate_size": int(width * float(d["mlp_ratio"])),
            "window_size": 0,  # no windows
            "fullatt_block_indexes": (),
        }
        return cls.from_hf_dict(renamed, image_size, where, variant="qwen2_vl")

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], image_size: int, where: str, variant: str = "qwen2_5_vl") -> QwenViTConfig:
        """From a vision sub-config dict that transformers' `Qwen2_5_VLVisionConfig` filled in; its `image_size`
        (written by our export and convert-hf) wins over the `image_size` argument (a hub file has none)."""
        rope = d.get("rope_parameters") or {}
        if d.get("in_channels", 3) != 3:
            raise VLAJaxError(f"{where}.in_channels={d['in_channels']}: only RGB (3) is supported")
        return cls(
            hidden_size=int(d["hidden_size"]),
            intermediate_size=int(d["intermediate_size"]),
            num_hidden_layers=int(d["depth"]),
            num_attention_heads=int(d["num_heads"]),
            patch_size=int(d["patch_size"]),
            temporal_patch_size=int(d["temporal_patch_size"]),
            spatial_merge_size=int(d["spatial_merge_size"]),
            window_size=int(d["window_size"]),
            out_hidden_size=int(d["out_hidden_size"]),
            fullatt_block_indexes=tuple(int(i) for i in d.get("fullatt_block_indexes") or ()),
            hidden_act=str(d.get("hidden_act", "silu")),
            rope_theta=float(rope.get("rope_theta", 10000.0)),
            tokens_per_second=int(d.get("tokens_per_second", 2)),
            image_size=int(d.get("image_size", image_size)),
            variant=variant,
        )

    def to_hf_dict(self) -> dict[str, Any]:
        if not self.windowed:
            return {
                "model_type": "qwen2_vl_vision",
                "depth": self.num_hidden_layers,
                "embed_dim": self.hidden_size,
                "hidden_size": self.out_hidden_size,
                "mlp_ratio": self.intermediate_size // self.hidden_size,  # an int in HF's (strict) config
                "num_heads": self.num_attention_heads,
                "in_channels": 3,
                "patch_size": self.patch_size,
                "temporal_patch_size": self.temporal_patch_size,
                "spatial_merge_size": self.spatial_merge_size,
                "hidden_act": self.hidden_act,
                "rope_parameters": {"rope_type": "axial", "rope_theta": self.rope_theta},
                "image_size": self.image_size,
            }
        return {
            "model_type": "qwen2_5_vl_vision",
            "depth": self.num_hidden_layers,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_heads": self.num_attention_heads,
            "in_channels": 3,
            "patch_size": self.patch_size,
            "temporal_patch_size": self.temporal_patch_size,
            "spatial_merge_size": self.spatial_merge_size,
            "window_size": self.window_size,
            "out_hidden_size": self.out_hidden_size,
            "fullatt_block_indexes": list(self.fullatt_block_indexes),
            "hidden_act": self.hidden_act,
            "tokens_per_second": self.tokens_per_second,
            "rope_parameters": {"rope_type": "axial", "rope_theta": self.rope_theta},
            "image_size": self.image_size,  # ours (HF keeps unknown keys): the runtime's frame size
        }


@dataclasses.dataclass(frozen=True)
class StaticLayout:
    """The per-image index arrays HF derives from `grid_thw` (module docstring), for one fixed image size."""

    hw: np.ndarray  # [P, 2] (row, column) of each patch in HF's block-major order
    window_order: np.ndarray  # [P] patch order of the window-permuted sequence
    window_ids: np.ndarray  # [P] window of each token of the permuted sequence
    unit_unpermute: np.ndarray  # [P / merge^2] argsort of the merge-unit window order


def static_layout(cfg: QwenViTConfig) -> StaticLayout:
    g, m = cfg.grid, cfg.spatial_merge_size
    rows, cols = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
    block = lambda a: a.reshape(g // m, m, g // m, m).transpose(0, 2, 1, 3).reshape(-1)  # noqa: E731
    hw = np.stack([block(rows), block(cols)], axis=-1)
    mg = cfg.merged_grid
    win = cfg.window_size // m // cfg.patch_size if cfg.windowed else mg  # Qwen2-VL: one window, no permutation
    units = np.arange(mg * mg).reshape(mg, mg)
    order, ids = [], []
    n_win = -(-mg // win)
    for wr in range(n_win):
        for wc in range(n_win):
            members = units[wr * win : (wr + 1) * win, wc * win : (wc + 1) * win].reshape(-1)
            order.append(members)
            ids.append(np.full(members.size, wr * n_win + wc))
    unit_order, unit_ids = np.concatenate(order), np.concatenate(ids)
    per_unit = m * m
    window_order = (unit_order[:, None] * per_unit + np.arange(per_unit)).reshape(-1)
    return StaticLayout(hw, window_order, np.repeat(unit_ids, per_unit), np.argsort(unit_order))


def vision_rotary(cfg: QwenViTConfig, hw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin [P, head_dim] (float32) of HF's axial rotary embedding for patch coordinates `hw` [P, 2]."""
    half = cfg.head_dim // 2
    inv_freq = 1.0 / (cfg.rope_theta ** (np.arange(0, half, 2, dtype=np.float32) / np.float32(half)))
    freqs = hw.astype(np.float32)[..., None] * inv_freq.astype(np.float32)  # [P, 2, head_dim / 4]
    angles = np.concatenate([freqs[:, 0], freqs[:, 1]], axis=-1)
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def _rotate(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotate-half RoPE in float32 (HF's `apply_rotary_pos_emb_vision`), x [N, P, H, hd], cos/sin [P, hd]."""
    x32 = x.astype(jnp.float32)
    return (x32 * cos[:, None] + rotate_half(x32) * sin[:, None]).astype(x.dtype)


def _dense(features: int, dtype, name: str) -> nn.Dense:
    return nn.Dense(features, dtype=dtype, param_dtype=jnp.float32, name=name)


class QwenVisionAttention(nn.Module):
    config: QwenViTConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, cos, sin, mask):
        cfg, dt = self.config, self.dtype
        n, p, d = x.shape
        h, hd = cfg.num_attention_heads, cfg.head_dim
        qkv = _dense(3 * d, dt, "qkv")(x).reshape(n, p, 3, h, hd)
        q, k, v = _rotate(qkv[:, :, 0], cos, sin), _rotate(qkv[:, :, 1], cos, sin), qkv[:, :, 2]
        scores = jnp.einsum("nqhd,nkhd->nhqk", q, k) * jnp.asarray(hd**-0.5, dt)
        scores = jnp.where(mask, scores.astype(jnp.float32), jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1).astype(dt)
        out = jnp.einsum("nhqk,nkhd->nqhd", probs, v).reshape(n, p, d)
        return _dense(d, dt, "proj")(out)


def _norm(cfg: QwenViTConfig, dtype, name: str) -> nn.Module:
    """Qwen2.5-VL: RMSNorm; Qwen2-VL: LayerNorm (both eps 1e-6)."""
    if cfg.windowed:
        return RMSNorm(VISION_NORM_EPS, False, dtype, name=name)
    return nn.LayerNorm(epsilon=VISION_NORM_EPS, dtype=dtype, param_dtype=jnp.float32, name=name)


class QwenVisionBlock(nn.Module):
    config: QwenViTConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, cos, sin, window_mask, is_full):
        cfg, dt = self.config, self.dtype
        mask = jnp.logical_or(is_full, window_mask)  # full-attention blocks see the whole image
        h = _norm(cfg, dt, "norm1")(x)
        x = x + QwenVisionAttention(cfg, dt, name="attn")(h, cos, sin, mask)
        h = _norm(cfg, dt, "norm2")(x)
        act = activation(cfg.hidden_act)
        if cfg.windowed:  # SwiGLU
            gate = _dense(cfg.intermediate_size, dt, "gate_proj")(h)
            up = _dense(cfg.intermediate_size, dt, "up_proj")(h)
            mlp = _dense(cfg.hidden_size, dt, "down_proj")(act(gate) * up)
        else:
            mlp = _dense(cfg.hidden_size, dt, "fc2")(act(_dense(cfg.intermediate_size, dt, "fc1")(h)))
        return x + mlp, None


class QwenBlocks(nn.Module):
    config: QwenViTConfig
    dtype: Any = jnp.float32
    scan_layers: bool = True
    remat: bool = False

    @nn.compact
    def __call__(self, x, cos, sin, window_mask):
        cfg = self.config
        return apply_layers(
            QwenVisionBlock,
            {"config": cfg, "dtype": self.dtype},
            cfg.num_hidden_layers,
            x,
            cos,
            sin,
            window_mask,
            scan=self.scan_layers,
            remat=self.remat,
            per_layer=jnp.asarray(cfg.full_attention_layers),
        )


class PatchMerger(nn.Module):
    config: QwenViTConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        cfg, dt = self.config, self.dtype
        n, p, d = x.shape
        unit = cfg.spatial_merge_size**2
        x = _norm(cfg, dt, "ln_q")(x).reshape(n, p // unit, unit * d)
        x = gelu_exact(_dense(unit * d, dt, "mlp_0")(x))
        return _dense(cfg.out_hidden_size, dt, "mlp_2")(x)


class QwenVisionTransformer(nn.Module):
    """`__call__(pixels NHWC)` -> HF `last_hidden_state` [N, P, width] (window order); `merge` -> [N, tokens, out]."""

    config: QwenViTConfig
    dtype: Any = jnp.float32
    scan_layers: bool = True
    remat: bool = False

    def setup(self):
        cfg = self.config
        kernel_shape = (cfg.temporal_patch_size, cfg.patch_size, cfg.patch_size, 3, cfg.hidden_size)
        self.patch_embed = self.param("patch_embed", nn.initializers.lecun_normal(), kernel_shape, jnp.float32)
        self.blocks = QwenBlocks(cfg, self.dtype, self.scan_layers, self.remat)
        self.merger = PatchMerger(cfg, self.dtype)

    def __call__(self, pixel_values: jax.Array) -> jax.Array:
        cfg, dt = self.config, self.dtype
        n, h, w, c = pixel_values.shape
        if (h, w, c) != (cfg.image_size, cfg.image_size, 3):
            raise ValueError(
                f"pixel_values must be [N, {cfg.image_size}, {cfg.image_size}, 3] (NHWC), "
                f"got {tuple(pixel_values.shape)}"
            )
        layout = static_layout(cfg)
        g, m, p = cfg.grid, cfg.spatial_merge_size, cfg.patch_size
        patches = pixel_values.astype(dt).reshape(n, g // m, m, p, g // m, m, p, 3)
        patches = patches.transpose(0, 1, 4, 2, 5, 3, 6, 7).reshape(n, g * g, p, p, 3)  # HF's block-major order
        patches = patches[:, layout.window_order]
        # identical frames through the Conv3d == one frame through the kernel summed over time
        x = jnp.einsum("nlijc,ijco->nlo", patches, self.patch_embed.sum(axis=0).astype(dt))
        cos, sin = (jnp.asarray(t[layout.window_order]) for t in vision_rotary(cfg, layout.hw))
        window_mask = jnp.asarray(layout.window_ids[:, None] == layout.window_ids[None, :])
        return self.blocks(x, cos, sin, window_mask)

    def merge(self, hidden: jax.Array) -> jax.Array:
        """Blocks' output (window order) -> the LM's image vectors, row-major over the merged grid."""
        return self.merger(hidden)[:, static_layout(self.config).unit_unpermute]
