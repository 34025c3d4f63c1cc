"""Analytic FLOPs of one training step of the policy-head VLA (model FLOPs, the MFU numerator).

Counted as in the PaLM paper's MFU (appendix B): every matmul costs 2 * m * n * k FLOPs in the
forward pass and twice that in the backward pass (so a train step is 3x the forward), and
self-attention adds its score and value matmuls (2 * 2 * S_q * S_k * d per layer forward), counted
in full even where a causal mask zeroes half of them. Recomputation (remat), layer norms,
softmaxes, activations, the optimizer and embedding lookups are not counted: MFU measures useful
model work, not whatever the implementation spends on top.
"""

from __future__ import annotations


def _mm(m: int, k: int, n: int) -> int:
    return 2 * m * k * n


def vision_forward(v, q: int, d_text: int) -> dict:
    """One image through the vision tower + image-to-text projection; ``v`` a Kosmos2VisionConfig."""
    patches = (v.image_size // v.patch_size) ** 2
    n = patches + 1  # + class token
    h, f = v.hidden_size, v.intermediate_size
    per_layer = _mm(n, h, 3 * h) + _mm(n, h, h) + _mm(n, h, f) + _mm(n, f, h) + 2 * _mm(n, h, n)
    tower = _mm(patches, v.patch_size * v.patch_size * 3, h) + v.num_hidden_layers * per_layer
    # projection: dense on all tokens, then latent queries cross-attend to [tokens + queries]
    kv = n + q
    proj = (
        _mm(n, h, d_text)
        + _mm(q, d_text, d_text)
        + 2 * _mm(kv, d_text, d_text)
        + _mm(q, d_text, d_text)
        + 2 * _mm(q, d_text, kv)
    )
    return {"vision_tower": tower, "projection": proj}


def text_forward(t, seq: int) -> int:
    """One sequence of ``seq`` tokens through the text decoder; ``t`` a Kosmos2TextConfig."""
    d, f = t.embed_dim, t.ffn_dim
    per_layer = _mm(seq, d, 3 * d) + _mm(seq, d, d) + _mm(seq, d, f) + _mm(seq, f, d) + 2 * _mm(seq, d, seq)
    return t.layers * per_layer


def head_forward(vla, steps: int) -> int:
    """The LSTM / MLP / GPT head over ``steps`` window steps of one sample (dense matmuls only)."""
    d, h, layers = vla.backbone.text.embed_dim, vla.head_hidden_size, vla.head_layers
    out = vla.action_chunk * vla.action_dim
    if vla.head == "lstm":
        return steps * (_mm(1, d, h) + layers * _mm(1, 2 * h, 4 * h) + _mm(1, h, h) + _mm(1, h, out))
    if vla.head == "gpt":
        block = (
            _mm(steps, h, 3 * h)
            + _mm(steps, h, h)
            + _mm(steps, h, 4 * h)
            + _mm(steps, 4 * h, h)
            + 2 * _mm(steps, h, steps)
        )
        return _mm(steps, d, h) + layers * block + _mm(steps, h, out)
    hist = vla.window_size
    return steps * (_mm(1, d * hist, h) + (layers - 1) * _mm(1, h, h) + _mm(1, h, out))


def sequence_length(vla, instruction_length: int) -> int:
    """Tokens of one frame's sequence: text + Q image latents (+2 brackets if used) + the action token."""
    brackets = 2 if vla.image_bracket_tokens is not None else 0
    return instruction_length + vla.backbone.latent_query_num + brackets + 1


def train_step_flops(vla, batch: int, instruction_length: int) -> dict:
    """Model FLOPs of one train step (forward x 3) for the per-frame (policy_head / one_step) structures."""
    bb = vla.backbone
    frames = batch * vla.window_size
    seq = sequence_length(vla, instruction_length)
    vis = vision_forward(bb.vision, bb.latent_query_num, bb.text.embed_dim)
    fwd = {
        "vision_tower": frames * vis["vision_tower"],
        "projection": frames * vis["projection"],
        "text_decoder": frames * text_forward(bb.text, seq),
        "head": batch * head_forward(vla, vla.window_size),
    }
    total_fwd = sum(fwd.values())
    return {
        "forward": fwd,
        "forward_total": total_fwd,
        "train_step_total": 3 * total_fwd,
        "tokens_per_step": frames * seq,
        "frames_per_step": frames,
    }


def matmul_params(vla) -> int:
    """Parameters that take part in a matmul per token (the '6 * N * tokens' N), for the record."""
    bb = vla.backbone
    v, t = bb.vision, bb.text
    vis = v.num_hidden_layers * (4 * v.hidden_size**2 + 2 * v.hidden_size * v.intermediate_size)
    txt = t.layers * (4 * t.embed_dim**2 + 2 * t.embed_dim * t.ffn_dim)
    return vis + txt
