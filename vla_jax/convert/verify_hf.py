"""Ours vs the Hugging Face torch model on the same random inputs, any family (`vla-jax verify-hf`).

`compare_with_hf` returns the max |difference| of (a) the vision tower's last hidden state,
(b) the projector output (the per-image vectors the LM receives), (c) the LM's last hidden state
on the family's real HF input path (token ids with image placeholders, one right-padded row;
PaliGemma with its token_type_ids prefix/suffix), plus `tol` and `ok`: every difference within
`tol`. `num_layers=N` builds both sides with the towers cut to their first N layers (real widths,
vocab, heads).
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from vla_jax.convert.hf_checkpoint import load_hf_checkpoint, read_hf_config
from vla_jax.convert.hf_reference import STAGES as HF_STAGES
from vla_jax.convert.hf_reference import clip_kosmos2_stages
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.qwen2_5_vl import mrope_positions
from vla_jax.train.step import FAST_COMPILE_OPTIONS

STAGES = ("vision_tower", "projector", "lm_last_hidden")


def random_inputs(config, *, seed: int, batch: int, text_len: int) -> dict[str, np.ndarray]:
    """The family's HF input layout with random pixels (NCHW) and ids; row 1 right-padded by 2."""
    rng = np.random.default_rng(seed)
    q, vocab, size = config.image_tokens, config.vocab_size, config.image_size
    pixels = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    if config.model_type in ("kosmos-2", "clip-kosmos-2"):
        # <s> <image> [q image slots] </image> text...
        pad = config.text.pad_token_id
        seq, start = 2 + q + 1 + text_len, 2
        low = max(pad, 2) + 1  # random ids never equal pad (pads get their own position id in HF)
        ids = rng.integers(low, vocab, size=(batch, seq)).astype(np.int64)
        ids[:, 0] = 0
    elif config.model_type == "paligemma":
        # [image]*q <bos> prefix... suffix...  (token_type_ids 0 on image + prefix, 1 on the suffix)
        seq, start = q + 1 + 2 * text_len, 0
        ids = _ids_avoiding(rng, vocab, (batch, seq), config.image_token_id)
        ids[:, q] = 2
    elif config.model_type == "idefics":
        # <s> text <image> text...: ONE <image> slot, read by cross-attention; the two tokens before it read no image
        seq, start = 2 + 1 + text_len, 2
        ids = rng.integers(3, vocab, size=(batch, seq)).astype(np.int64)  # additional-vocab ids included
        ids = np.where(ids == config.image_token_id, 3, ids)
        ids[:, 0] = 1
    else:  # smolvlm, llava, qwen2_5_vl: one text token, the image, text...
        seq, start = 1 + q + text_len, 1
        ids = _ids_avoiding(rng, vocab, (batch, seq), config.image_token_id)
    image_mask = np.zeros((batch, seq), dtype=bool)
    image_mask[:, start : start + (1 if config.model_type == "idefics" else q)] = True
    attn = np.ones((batch, seq), dtype=bool)
    if batch > 1 and text_len >= 2:
        attn[1, -2:] = False
    out = {"pixel_values": pixels, "input_ids": ids, "image_mask": image_mask, "attention_mask": attn}
    if config.model_type in ("kosmos-2", "clip-kosmos-2"):
        ids[~attn] = config.text.pad_token_id  # HF gives pads their own position id
        not_pad = (ids != config.text.pad_token_id).astype(np.int64)
        out["position_ids"] = np.cumsum(not_pad, axis=1) * not_pad + config.text.pad_token_id  # HF input_ids path
    elif config.model_type in (
        "qwen2_5_vl",
        "qwen2_vl",
    ):  # 3-D (t, h, w) positions from the model's own rule (HF: get_rope_index)
        ids[image_mask] = config.image_token_id
        image_index = np.where(image_mask, np.cumsum(image_mask, axis=1) - 1, -1)
        out["position_ids"] = np.asarray(mrope_positions(attn, image_index, config.vision.merged_grid), np.int64)
    else:
        ids[image_mask] = config.image_token_id
        out["position_ids"] = np.broadcast_to(config.first_position + np.arange(seq), (batch, seq)).astype(np.int64)
    if config.model_type == "idefics":  # the image each slot cross-attends to (-1: none, before the image)
        out["media_index"] = np.where(np.cumsum(image_mask, axis=1) > 0, 0, -1).astype(np.int64)
    if config.model_type == "paligemma":
        out["token_type_ids"] = np.broadcast_to((np.arange(seq) >= q + 1 + text_len).astype(np.int64), (batch, seq))
    return out


def _ids_avoiding(rng, vocab: int, shape, special: int) -> np.ndarray:
    ids = rng.integers(3, vocab - 1, size=shape).astype(np.int64)
    return np.where(ids >= special, ids + 1, ids) if special < vocab else ids


def flax_outputs(config, params, inputs: dict[str, np.ndarray], fast_compile: bool = False) -> dict[str, np.ndarray]:
    """Our three stages on `inputs` (the LM stage rebuilds HF's placeholder path from the interface).

    `fast_compile`: XLA's cheap optimisation level (tiny test models: several times faster to compile)."""
    pixels = jnp.asarray(inputs["pixel_values"].transpose(0, 2, 3, 1))  # NCHW -> NHWC
    block = None
    if "token_type_ids" in inputs:  # HF: block_sequence_ids = where(token_type_ids == 0, 0, -1)
        block = jnp.asarray(np.where(inputs["token_type_ids"] == 0, 0, -1), jnp.int32)
    with jax.default_matmul_precision("highest"):
        if "media_index" in inputs:  # cross-attention media (IDEFICS): the image is not in the sequence
            out = _media_stages_program(config, fast_compile)(
                {"params": params},
                pixels,
                jnp.asarray(inputs["input_ids"], jnp.int32),
                jnp.asarray(inputs["attention_mask"]),
                jnp.asarray(inputs["position_ids"], jnp.int32),
                jnp.asarray(inputs["media_index"], jnp.int32),
            )
            return {k: np.asarray(v) for k, v in out.items()}
        out = _stages_program(config, fast_compile)(
            {"params": params},
            pixels,
            jnp.asarray(inputs["input_ids"], jnp.int32),
            jnp.asarray(inputs["image_mask"]),
            jnp.asarray(inputs["attention_mask"]),
            jnp.asarray(inputs["position_ids"], jnp.int32),
            block,
        )
    return {k: np.asarray(v) for k, v in out.items()}


@functools.lru_cache(maxsize=16)
def _stages_program(config, fast_compile: bool):
    """One jitted program for the three stages per (frozen, hashable) config: repeated checks of one model in a
    process (verify-hf's --tol reruns, the tests, bench/backbones_verify.py) compile it once per input shape."""
    module = backbone_lib.build(config)

    def stages(mdl, px, ids, image_mask, attention_mask, positions, block_ids):
        image = mdl.encode_images(px)
        embeds = mdl.embed_tokens(jnp.clip(ids, 0, config.vocab_size - 1))
        slot = jnp.clip(jnp.cumsum(image_mask, axis=1) - 1, 0, image.shape[1] - 1)  # k-th slot <- k-th vector
        gathered = jnp.take_along_axis(image, slot[..., None], axis=1).astype(embeds.dtype)
        embeds = jnp.where(image_mask[..., None], gathered, embeds)
        text = mdl.decode(embeds, attention_mask, positions=positions, block_ids=block_ids)
        return {"vision_tower": mdl.vision_tower(px), "projector": _projector(mdl, px), "lm_last_hidden": text}

    options = FAST_COMPILE_OPTIONS if fast_compile else None
    return jax.jit(lambda v, *a: module.apply(v, *a, method=stages), compiler_options=options)


@functools.lru_cache(maxsize=16)
def _media_stages_program(config, fast_compile: bool):
    """The three stages of a cross-attention family: the LM reads each row's image as media [B, 1, Q, width]."""
    module = backbone_lib.build(config)

    def stages(mdl, px, ids, attention_mask, positions, media_index):
        media = mdl.encode_images(px)
        embeds = mdl.embed_tokens(jnp.clip(ids, 0, config.vocab_size - 1))
        text = mdl.decode(embeds, attention_mask, positions=positions, media=media[:, None], media_index=media_index)
        return {"vision_tower": mdl.vision_tower(px), "projector": media, "lm_last_hidden": text}

    options = FAST_COMPILE_OPTIONS if fast_compile else None
    return jax.jit(lambda v, *a: module.apply(v, *a, method=stages), compiler_options=options)


def _projector(mdl, px):
    """HF's projector output: Kosmos-2's unscaled `image_embeds`, the others' `encode_images`."""
    return mdl.image_to_text(px) if hasattr(mdl, "image_to_text") else mdl.encode_images(px)


def hf_outputs(
    src: Path,
    inputs: dict[str, np.ndarray],
    *,
    config=None,
    params=None,
    vision_src: Path | None = None,
    num_layers: int | None = None,
) -> dict[str, np.ndarray]:
    if vision_src is not None:
        return clip_kosmos2_stages(Path(src), Path(vision_src), config, params, inputs, num_layers)
    model_type = (config or read_hf_config(src)).model_type
    return HF_STAGES[model_type](Path(src), inputs, num_layers)


def compare_with_hf(
    src: str | Path,
    *,
    vision_src: str | Path | None = None,
    tol: float = 1e-4,
    seed: int = 0,
    batch: int = 2,
    text_len: int = 6,
    num_layers: int | None = None,
    scan_layers: bool = True,
    fast_compile: bool = False,
) -> dict:
    """Max abs differences per stage plus `tol` and `ok`, as printed by `vla-jax verify-hf`."""
    config, params = load_hf_checkpoint(src, vision_src=vision_src, num_layers=num_layers, scan_layers=scan_layers)
    inputs = random_inputs(config, seed=seed, batch=batch, text_len=text_len)
    ours = flax_outputs(config, params, inputs, fast_compile=fast_compile)
    vision = Path(vision_src) if vision_src is not None else None
    theirs = hf_outputs(Path(src), inputs, config=config, params=params, vision_src=vision, num_layers=num_layers)
    result: dict = {"model_type": config.model_type}
    result.update({k: float(np.max(np.abs(ours[k] - theirs[k]))) for k in STAGES})
    result["num_layers"] = num_layers
    result["tol"] = tol
    result["ok"] = all(result[k] <= tol for k in STAGES)
    return result
