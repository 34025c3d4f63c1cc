"""What every family's mapping table is made of: rows from our Flax paths to HF tensor names.

A `Row` maps one parameter of a family's Flax module (scanned layout: per-layer tensors have the
layer index as axis 0) to one HF tensor, or, when the HF name contains `{i}`, to the tensors of
layers i = 0..n-1, transformed and stacked on a new axis 0.

Transforms:  "T"    torch Linear weight [out, in]          -> Dense kernel [in, out]
             "conv" torch Conv2d weight [out, in, kh, kw]  -> Conv kernel [kh, kw, in, out]
             "conv3d" torch Conv3d weight [out, in, kt, kh, kw] -> [kt, kh, kw, in, out]
             None   copied as is (biases, norm weights -> scale, embeddings)

`source` names the checkpoint folder a row reads from ("main"; the CLIP + Kosmos-2 hybrid's
vision rows read "vision"). Family tables live next to this file as `<family>_table.py`, each
with `mapping_table(config) -> list[Row]` and `ignored_hf_tensors(config) -> {name: why}`.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Row:
    ours: str  # '/'-joined Flax path (scanned layout)
    hf: str  # HF tensor name, with `{i}` for per-layer tensors
    transform: str | None = None
    num_layers: int = 0  # > 0 for stacked rows
    source: str = "main"  # which checkpoint folder holds the tensor

    def hf_names(self) -> list[str]:
        return [self.hf.format(i=i) for i in range(self.num_layers)] if self.num_layers else [self.hf]


def linear(ours: str, hf: str, n: int = 0, bias: bool = True, source: str = "main") -> list[Row]:
    rows = [Row(f"{ours}/kernel", f"{hf}.weight", "T", n, source)]
    return rows + ([Row(f"{ours}/bias", f"{hf}.bias", None, n, source)] if bias else [])


def layer_norm(ours: str, hf: str, n: int = 0, source: str = "main") -> list[Row]:
    return [Row(f"{ours}/scale", f"{hf}.weight", None, n, source), Row(f"{ours}/bias", f"{hf}.bias", None, n, source)]


def rms_norm(ours: str, hf: str, n: int = 0) -> list[Row]:
    return [Row(f"{ours}/scale", f"{hf}.weight", None, n)]


def attention(
    ours: str,
    hf: str,
    n: int = 0,
    out: str = "out_proj",
    bias: bool = True,
    source: str = "main",
    out_bias: bool | None = None,
) -> list[Row]:
    """q/k/v/out projections; `out_bias` (default: `bias`) for the output one (Qwen2: biased q/k/v only)."""
    rows: list[Row] = []
    for proj in ("q_proj", "k_proj", "v_proj"):
        rows += linear(f"{ours}/{proj}", f"{hf}.{proj}", n, bias, source)
    return rows + linear(f"{ours}/{out}", f"{hf}.{out}", n, bias if out_bias is None else out_bias, source)


def vit(ours: str, hf: str, config, source: str = "main") -> list[Row]:
    """Rows of `vla_jax.models.vit.VisionTransformer` (CLIP or SigLIP variant) under HF prefix `hf`.

    `hf` is the prefix of the HF module holding `embeddings`, `encoder`, `post_layernorm`.
    """
    n, clip = config.num_hidden_layers, config.variant == "clip"
    hf = f"{hf}." if hf else ""  # "" for a bare CLIPVisionModel (transformers 5 names it without prefix)
    e, layer = f"{hf}embeddings", f"{hf}encoder.layers.{{i}}"
    rows = [Row(f"{ours}/patch_embedding/kernel", f"{e}.patch_embedding.weight", "conv", source=source)]
    if clip:
        rows.append(Row(f"{ours}/class_embedding", f"{e}.class_embedding", source=source))
    else:
        rows.append(Row(f"{ours}/patch_embedding/bias", f"{e}.patch_embedding.bias", source=source))
    rows.append(Row(f"{ours}/position_embedding/embedding", f"{e}.position_embedding.weight", source=source))
    if clip:
        rows += layer_norm(f"{ours}/pre_layrnorm", f"{hf}pre_layrnorm", source=source)
    enc = f"{ours}/encoder/layers"
    rows += [
        *layer_norm(f"{enc}/layer_norm1", f"{layer}.layer_norm1", n, source),
        *attention(f"{enc}/self_attn", f"{layer}.self_attn", n, source=source),
        *layer_norm(f"{enc}/layer_norm2", f"{layer}.layer_norm2", n, source),
        *linear(f"{enc}/fc1", f"{layer}.mlp.fc1", n, source=source),
        *linear(f"{enc}/fc2", f"{layer}.mlp.fc2", n, source=source),
        *layer_norm(f"{ours}/post_layernorm", f"{hf}post_layernorm", source=source),
    ]
    return rows


def decoder(ours: str, hf: str, config, lm_head: str) -> list[Row]:
    """Rows of `vla_jax.models.decoder.DecoderLM` under HF prefix `hf` (the HF `...Model` with `layers`)."""
    n, bias, mlp_bias = config.num_hidden_layers, config.qkv_bias, config.mlp_bias
    layer, lay = f"{hf}.layers.{{i}}", f"{ours}/decoder/layers"
    rows = [
        Row(f"{ours}/embed_tokens/embedding", f"{hf}.embed_tokens.weight"),
        *rms_norm(f"{lay}/input_layernorm", f"{layer}.input_layernorm", n),
        *attention(
            f"{lay}/self_attn", f"{layer}.self_attn", n, out="o_proj", bias=bias, out_bias=config.attention_bias
        ),
        *rms_norm(f"{lay}/post_attention_layernorm", f"{layer}.post_attention_layernorm", n),
        *[
            r
            for proj in ("gate_proj", "up_proj", "down_proj")
            for r in linear(f"{lay}/mlp/{proj}", f"{layer}.mlp.{proj}", n, mlp_bias)
        ],
        *rms_norm(f"{ours}/norm", f"{hf}.norm"),
    ]
    if config.variant == "gemma2":
        rows += [
            *rms_norm(f"{lay}/pre_feedforward_layernorm", f"{layer}.pre_feedforward_layernorm", n),
            *rms_norm(f"{lay}/post_feedforward_layernorm", f"{layer}.post_feedforward_layernorm", n),
        ]
    if not config.tie_word_embeddings:
        rows.append(Row(f"{ours}/lm_head/kernel", f"{lm_head}.weight", "T"))
    return rows


def to_ours(array: np.ndarray, transform: str | None) -> np.ndarray:
    if transform == "T":
        return array.T
    if transform == "conv":
        return array.transpose(2, 3, 1, 0)
    if transform == "conv3d":
        return array.transpose(2, 3, 4, 1, 0)
    return array


def to_hf(array: np.ndarray, transform: str | None) -> np.ndarray:
    """Inverse of `to_ours` (what the export writes)."""
    if transform == "T":
        return array.T
    if transform == "conv":
        return array.transpose(3, 2, 0, 1)
    if transform == "conv3d":
        return array.transpose(4, 3, 0, 1, 2)
    return array


def hf_shape(our_layer_shape: tuple[int, ...], transform: str | None) -> tuple[int, ...]:
    """The HF shape that `to_ours` turns into `our_layer_shape` (per layer, no stack axis)."""
    if transform == "T":
        return tuple(reversed(our_layer_shape))
    if transform == "conv":
        kh, kw, cin, cout = our_layer_shape
        return (cout, cin, kh, kw)
    if transform == "conv3d":
        kt, kh, kw, cin, cout = our_layer_shape
        return (cout, cin, kt, kh, kw)
    return tuple(our_layer_shape)
