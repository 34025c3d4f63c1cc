"""Our Flax Kosmos-2 vs the Hugging Face torch model on the same random inputs (`vla-jax verify-hf`).

`compare_with_hf` returns the max |difference| of (a) the vision tower's last hidden state,
(b) the image-to-text projection output, (c) the text decoder's last hidden state on the real
Kosmos-2 input path (input_ids + image_embeds + image_embeds_position_mask, one right-padded
row), plus `ok`: every difference within `tol`.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from vla_jax.convert.hf_checkpoint import load_hf_checkpoint
from vla_jax.models.kosmos2 import Kosmos2Backbone


def random_inputs(config, *, seed: int, batch: int, text_len: int) -> dict[str, np.ndarray]:
    """Kosmos-2 layout: <s> <image> [latent_query_num image slots] </image> text...; row 1 right-padded."""
    rng = np.random.default_rng(seed)
    q, pad = config.latent_query_num, config.text.pad_token_id
    seq = 2 + q + 1 + text_len
    low = max(pad, 2) + 1  # random ids never equal pad (pads get their own position id in HF)
    ids = rng.integers(low, config.text.vocab_size, size=(batch, seq)).astype(np.int64)
    ids[:, 0] = 0
    img_mask = np.zeros((batch, seq), dtype=bool)
    img_mask[:, 2 : 2 + q] = True
    attn = np.ones((batch, seq), dtype=bool)
    if batch > 1 and text_len >= 2:
        ids[1, -2:] = pad
        attn[1, -2:] = False
    size = config.vision.image_size
    pixels = rng.standard_normal((batch, 3, size, size)).astype(np.float32)  # NCHW, torch side
    return {"pixel_values": pixels, "input_ids": ids, "image_embeds_position_mask": img_mask, "attention_mask": attn}


def hf_outputs(src: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import torch
    from transformers import Kosmos2ForConditionalGeneration

    model = Kosmos2ForConditionalGeneration.from_pretrained(src, dtype=torch.float32).eval()
    t = {k: torch.from_numpy(v) for k, v in inputs.items()}
    with torch.no_grad():
        vision = model.vision_model(pixel_values=t["pixel_values"]).last_hidden_state
        image_embeds = model.get_image_features(t["pixel_values"], return_dict=True).pooler_output  # pyright: ignore
        text = model.text_model.model(
            input_ids=t["input_ids"],
            attention_mask=t["attention_mask"].long(),
            image_embeds=image_embeds,
            image_embeds_position_mask=t["image_embeds_position_mask"].long(),
        ).last_hidden_state
    return {"vision_tower": vision.numpy(), "image_to_text": image_embeds.numpy(), "text_decoder": text.numpy()}


def flax_outputs(config, params, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    model = Kosmos2Backbone(config)
    pixels = jnp.asarray(inputs["pixel_values"].transpose(0, 2, 3, 1))  # NCHW -> NHWC
    variables = {"params": params}
    with jax.default_matmul_precision("highest"):
        vision = jax.jit(lambda v, x: model.apply(v, x, method="vision_tower"))(variables, pixels)
        image = jax.jit(lambda v, x: model.apply(v, x, method="image_to_text"))(variables, pixels)
        text = jax.jit(model.apply)(
            variables,
            pixels,
            jnp.asarray(inputs["input_ids"], jnp.int32),
            jnp.asarray(inputs["image_embeds_position_mask"]),
            jnp.asarray(inputs["attention_mask"]),
        )
    return {"vision_tower": np.asarray(vision), "image_to_text": np.asarray(image), "text_decoder": np.asarray(text)}


def compare_with_hf(
    src: str | Path, *, tol: float = 1e-4, seed: int = 0, batch: int = 2, text_len: int = 6, scan_layers: bool = True
) -> dict:
    """Max abs differences per stage plus `tol` and `ok`, as printed by `vla-jax verify-hf`."""
    config, params = load_hf_checkpoint(src, scan_layers=scan_layers)
    inputs = random_inputs(config, seed=seed, batch=batch, text_len=text_len)
    ours, theirs = flax_outputs(config, params, inputs), hf_outputs(Path(src), inputs)
    result = {k: float(np.max(np.abs(ours[k] - theirs[k]))) for k in ("vision_tower", "image_to_text", "text_decoder")}
    result["tol"] = tol
    result["ok"] = all(v <= tol for k, v in result.items() if k != "tol")
    return result
