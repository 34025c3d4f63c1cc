"""File size and weight memory of a policy at each export dtype, computed from its config (no weights needed).

    python -m vla_runtime.sizes            # the table for the full-size Kosmos-2 policy (README "Jetson notes")
    vla-runtime info EXPORT_DIR            # the same numbers for an export folder

The model is built on torch's meta device, so counting the 1.7 B-parameter
policy allocates nothing. Bytes per dtype follow exactly what
`bundle.write_export` stores: float32 4 B, bf16/fp16 2 B, int8 1 B per linear
weight + a float32 scale per output channel, everything else in fp16.
Memory is the weights after loading (int8 is dequantised to fp16 on a GPU,
float32 on a CPU; heads always stay float32); activations come on top and are
small at batch 1 except the interleaved KV cache, given per token.
"""

from __future__ import annotations

import json
import sys

import torch

from .quantize import is_linear_weight
from .structures import PolicyModel

FULL_KOSMOS2 = {
    "model_type": "kosmos-2",
    "latent_query_num": 64,
    "vision_config": {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "image_size": 224,
        "patch_size": 14,
    },
    "text_config": {
        "vocab_size": 65037,
        "embed_dim": 2048,
        "layers": 24,
        "ffn_dim": 8192,
        "attention_heads": 32,
        "max_position_embeddings": 2048,
        "scale_embedding": True,
        "pad_token_id": 1,
    },
}
# RoboVLMs' best CALVIN policy (vla_jax.vla.VLAConfig defaults).
FULL_POLICY = {
    "structure": "policy_head",
    "head": "lstm",
    "window_size": 16,
    "action_chunk": 10,
    "action_dim": 7,
    "has_gripper": True,
    "head_hidden_size": 1024,
    "head_layers": 4,
    "head_heads": 8,
}


def model_sizes(backbone: dict, policy: dict) -> dict:
    with torch.device("meta"):
        model = PolicyModel.from_config({"backbone": backbone, "policy": policy})
    head = {f"head.{k}" for k, _ in model.head.named_parameters()} if model.head is not None else set()
    n_total = n_head = n_linear = n_rows = 0
    for name, p in model.named_parameters():
        n_total += p.numel()
        if name in head:
            n_head += p.numel()
        if is_linear_weight(name, p):
            n_linear += p.numel()
            n_rows += p.shape[0]
    n_body = n_total - n_head
    out = {
        "parameters": n_total,
        "head_parameters": n_head,
        "kv_cache_bytes_per_token_fp16": model.adapter.kv_values_per_token * 2,
        "dtypes": {},
    }
    for dtype, nbytes in (("float32", 4), ("bfloat16", 2), ("float16", 2)):
        out["dtypes"][dtype] = {"file_bytes": n_total * nbytes, "memory_bytes": n_body * nbytes + n_head * 4}
    out["dtypes"]["int8"] = {
        "file_bytes": n_linear + 4 * n_rows + (n_total - n_linear) * 2,
        "memory_bytes": n_body * 2 + n_head * 4,
        "memory_bytes_cpu": n_body * 4 + n_head * 4,
    }
    return out


def markdown_table(sizes: dict) -> str:
    gib = 1024**3
    lines = ["| export dtype | model.safetensors | weights in memory after load |", "|---|---|---|"]
    for dtype, d in sizes["dtypes"].items():
        note = " (dequantised to fp16 on CUDA)" if dtype == "int8" else ""
        lines.append(
            f"| {dtype} | {d['file_bytes'] / gib:.2f} GiB ({d['file_bytes']:,} B) | "
            f"{d['memory_bytes'] / gib:.2f} GiB{note} |"
        )
    return "\n".join(lines)


def main() -> int:
    sizes = model_sizes(FULL_KOSMOS2, FULL_POLICY)
    print(
        f"full-size Kosmos-2 policy ({FULL_POLICY['structure']}/{FULL_POLICY['head']}): "
        f"{sizes['parameters']:,} parameters ({sizes['head_parameters']:,} in the head)"
    )
    print(markdown_table(sizes))
    print(json.dumps(sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
