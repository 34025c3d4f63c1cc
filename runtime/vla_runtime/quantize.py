"""Weight-only int8: symmetric, one scale per output channel of every linear layer.

A linear weight `W [out, in]` is stored as `int8 round(W / s)` with
`s[o] = max|W[o, :]| / 127` under the key `NAME` and the float32 scales under
`NAME + SCALE_SUFFIX`. Everything else (embeddings, norms, biases, convs) is kept
in float16, which holds them with < 1e-3 relative error. Dequantised at load,
so the compute path is the ordinary float one; the win is file size and transfer.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

SCALE_SUFFIX = ".int8_scale"


def is_linear_weight(name: str, tensor: torch.Tensor) -> bool:
    """2-D `.weight`s that feed a matmul; token/position embeddings are looked up, not multiplied."""
    if tensor.ndim != 2 or not name.endswith(".weight"):
        return False
    return not any(part in name for part in ("embed_tokens", "position_embedding", "embedding."))


def quantize_weight(w: torch.Tensor):
    w = w.detach().float()
    scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def quantize_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        if is_linear_weight(name, t):
            q, s = quantize_weight(t)
            out[name], out[name + SCALE_SUFFIX] = q.contiguous(), s.contiguous()
        else:
            out[name] = t.detach().to(torch.float16).contiguous()
    return out


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float()[:, None]
