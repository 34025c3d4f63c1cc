"""`--verify`: the JAX policy and the exported torch policy on the same random inputs.

Both see the same uint8 window (first frame before the episode start when T > 1,
so the history masking is exercised), the same token ids (from the export's own
tokenizer.json) and the same weights. Compared: every valid step of the full
window, and the torch runtime's incremental path fed frame by frame against the
JAX model's newest step. JAX always runs in float32 (the trained model); the
torch side runs at the export dtype, so the number is the export's own error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import torch

from vla_jax.evaluate.jax_policy import reference_actions
from vla_runtime import Policy
from vla_runtime.policy import model_pixels

# Max abs difference of normalised actions (range [-1, 1]) accepted per export dtype. float32 is
# the parity promise. The others are weight/activation rounding; measured on tiny random models:
# fp16 4e-5..3e-4, bf16 9e-4..2.1e-3, int8 1.2e-3..2.8e-3 (tests/test_export.py). Deeper models
# accumulate more rounding, hence the margin.
TOLERANCE = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2, "int8": 5e-2}
INSTRUCTION = "Navigate around the obstacle on the left side and reach the target"


def verify_export(
    vla_config, params: Mapping[str, Any], export_dir: str, seed: int = 0, fast_compile: bool = False
) -> dict[str, Any]:
    policy = Policy.load(export_dir, device="cpu")
    dtype = policy.config["dtype"]
    t, size = vla_config.window_size, vla_config.backbone.image_size
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (1, t, size, size, 3), dtype=np.uint8)
    image_mask = np.ones((1, t), bool)
    if t > 1:
        image_mask[0, 0] = False
        images[0, 0] = 0
    ids, mask = policy.tokenizer(INSTRUCTION)
    batch = {"image": images, "image_mask": image_mask, "tokens": ids[None].astype(np.int32), "token_mask": mask[None]}
    ref = np.asarray(reference_actions(vla_config, fast_compile)(jax.tree.map(np.asarray, params), batch), np.float64)

    model = policy.model
    mdtype = model.compute_dtype
    with torch.no_grad():
        pixels = model_pixels(torch.from_numpy(images), policy.preprocessing, mdtype)
        full = (
            model.full(pixels, torch.from_numpy(image_mask), torch.from_numpy(ids)[None], torch.from_numpy(mask)[None])
            .double()
            .numpy()
        )
        state = None
        for i in range(t):
            if image_mask[0, i]:
                frame = model_pixels(torch.from_numpy(images[0, i])[None], policy.preprocessing, mdtype)
                state, inc = model.step(state, frame, torch.from_numpy(ids)[None], torch.from_numpy(mask)[None])
        inc = inc.double().numpy()
    valid = image_mask[0]
    diff_full = float(np.abs(full[0, valid] - ref[0, valid]).max())
    diff_inc = float(np.abs(inc[0] - ref[0, -1]).max())
    diff = max(diff_full, diff_inc)
    tol = TOLERANCE[dtype]
    size_bytes = os.path.getsize(os.path.join(export_dir, "model.safetensors"))
    return {
        "export": export_dir,
        "dtype": dtype,
        "structure": vla_config.structure,
        "head": vla_config.head,
        "max_abs_action_diff": diff,
        "full_window_diff": diff_full,
        "incremental_diff": diff_inc,
        "tolerance": tol,
        "ok": bool(diff <= tol),
        "model_bytes": size_bytes,
        "max_abs_action": float(np.abs(ref[0, valid]).max()),
    }
