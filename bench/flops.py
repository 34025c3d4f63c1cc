"""Analytic FLOPs of one training step of a VLA policy (model FLOPs, the MFU numerator), any backbone family
of `vla_jax.models.backbone` and any of the four structures of `vla_jax.vla`.

Counted as in the PaLM paper's MFU (appendix B): every matmul costs 2 * m * n * k FLOPs in the
forward pass and twice that in the backward pass (so a train step is 3x the forward), and
self-attention adds its score and value matmuls (2 * 2 * S_q * S_k * width per layer forward),
counted in full even where a causal mask zeroes half of them. Recomputation (remat), layer norms,
softmaxes, activations, the optimizer and embedding lookups are not counted: MFU measures useful
model work, not whatever the implementation spends on top.

Where the structures differ (vla_jax/vla.py's docstring has the layouts):

* ``policy_head`` / ``one_step_continuous``: one decoder sequence per frame, ``L + Q (+2) + 1`` tokens;
* ``one_step_discrete``: one per frame with the C*A teacher-forced action tokens as its tail, plus
  the LM head's last ``num_bins`` rows at those C*A slots;
* ``interleaved``: ONE sequence per sample, the T frame blocks concatenated: ``T * (L + Q (+2) + 1)``
  tokens, so its attention term grows with T^2 (every other term is linear in T).
"""

from __future__ import annotations


def _mm(m: int, k: int, n: int) -> int:
    return 2 * m * k * n


# ------------------------------------------------------------------------------------------- vision
def vit_forward(v) -> int:
    """One image through a `vla_jax.models.vit.ViTConfig` tower (CLIP: + class token; SigLIP: patches only)."""
    patches, n = v.num_patches, v.num_tokens
    h, f = v.hidden_size, v.intermediate_size
    per_layer = _mm(n, h, 3 * h) + _mm(n, h, h) + _mm(n, h, f) + _mm(n, f, h) + 2 * _mm(n, h, n)
    return _mm(patches, v.patch_size * v.patch_size * 3, h) + v.num_hidden_layers * per_layer


def projection_forward(bb) -> int:
    """One image's vision features -> the decoder's input space (the family's projector / connector)."""
    v, d = bb.vision, bb.hidden_size
    if bb.model_type in ("kosmos-2", "clip-kosmos-2"):
        # dense on all tokens, then latent queries cross-attend to [tokens + queries]
        n, q = v.num_tokens, bb.latent_query_num
        kv = n + q
        return _mm(n, v.hidden_size, d) + _mm(q, d, d) + 2 * _mm(kv, d, d) + _mm(q, d, d) + 2 * _mm(q, d, kv)
    if bb.model_type == "smolvlm":  # pixel shuffle (no FLOPs) then one bias-free linear
        s = bb.scale_factor
        return _mm(v.num_patches // s**2, v.hidden_size * s * s, d)
    if bb.model_type == "paligemma":  # one linear per patch
        return _mm(v.num_patches, v.hidden_size, d)
    raise ValueError(f"no FLOP count for backbone model_type {bb.model_type!r}")


def vision_forward(bb) -> dict:
    return {"vision_tower": vit_forward(bb.vision), "projection": projection_forward(bb)}


# ------------------------------------------------------------------------------------------- decoder
def _text_dims(t) -> tuple[int, int, int, int, int, int]:
    """(layers, d, query width, key/value width, ffn, ffn matmuls) of a Kosmos-2 or a Llama/Gemma text config."""
    if hasattr(t, "embed_dim"):  # Kosmos2TextConfig: MHA, fc1/fc2
        return t.layers, t.embed_dim, t.embed_dim, t.embed_dim, t.ffn_dim, 2
    q = t.num_attention_heads * t.head_dim
    kv = t.num_key_value_heads * t.head_dim
    return t.num_hidden_layers, t.hidden_size, q, kv, t.intermediate_size, 3  # gated MLP: gate, up, down


def text_forward(t, seq: int) -> int:
    """One sequence of ``seq`` tokens through the text decoder (linear terms + the seq^2 attention term)."""
    return sum(text_forward_terms(t, seq).values())


def text_forward_terms(t, seq: int) -> dict:
    """The decoder's forward FLOPs split into the parts linear in ``seq`` and the attention (seq^2) part."""
    layers, d, q, kv, f, n_ffn = _text_dims(t)
    linear = _mm(seq, d, q) + 2 * _mm(seq, d, kv) + _mm(seq, q, d) + n_ffn * _mm(seq, d, f)
    attention = 2 * _mm(seq, q, seq)
    return {"linear": layers * linear, "attention": layers * attention}


# ------------------------------------------------------------------------------------------- head
def head_forward(vla, steps: int) -> int:
    """The LSTM / MLP / GPT / discrete head over ``steps`` window steps of one sample (dense matmuls only)."""
    d, h, layers = vla.backbone.hidden_size, vla.head_hidden_size, vla.head_layers
    out = vla.action_chunk * vla.action_dim
    if vla.structure == "one_step_discrete":  # the LM head's last num_bins rows at each of the C*A slots
        return steps * _mm(out, d, vla.num_bins)
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
    hist = vla.window_size if vla.structure == "policy_head" else 1
    return steps * (_mm(1, d * hist, h) + (layers - 1) * _mm(1, h, h) + _mm(1, h, out))


# ------------------------------------------------------------------------------------------- structures
def block_length(vla, instruction_length: int) -> int:
    """Tokens of one frame's block: text + image tokens (+2 brackets if used) + the tail."""
    brackets = 2 if vla.image_bracket_tokens is not None else 0
    tail = vla.action_chunk * vla.action_dim if vla.structure == "one_step_discrete" else 1
    return instruction_length + vla.backbone.image_tokens + brackets + tail


def sequence_length(vla, instruction_length: int) -> int:
    """Tokens of one decoder sequence: one block, or the whole window's blocks for ``interleaved``."""
    per_block = block_length(vla, instruction_length)
    return per_block * vla.window_size if vla.structure == "interleaved" else per_block


def train_step_flops(vla, batch: int, instruction_length: int) -> dict:
    """Model FLOPs of one train step (forward x 3) of ``vla`` (a `vla_jax.vla.VLAConfig`)."""
    bb = vla.backbone
    frames = batch * vla.window_size
    seq = sequence_length(vla, instruction_length)
    sequences = batch if vla.structure == "interleaved" else frames
    vis = vision_forward(bb)
    text = text_forward_terms(bb.text, seq)
    fwd = {
        "vision_tower": frames * vis["vision_tower"],
        "projection": frames * vis["projection"],
        "text_decoder": sequences * (text["linear"] + text["attention"]),
        "head": batch * head_forward(vla, vla.window_size),
    }
    total_fwd = sum(fwd.values())
    return {
        "forward": fwd,
        "forward_total": total_fwd,
        "train_step_total": 3 * total_fwd,
        "decoder_attention_forward": sequences * text["attention"],
        "tokens_per_step": sequences * seq,
        "frames_per_step": frames,
    }


def matmul_params(vla) -> int:
    """Parameters that take part in a matmul per token (the '6 * N * tokens' N), for the record."""
    bb = vla.backbone
    v = bb.vision
    vis = v.num_hidden_layers * (4 * v.hidden_size**2 + 2 * v.hidden_size * v.intermediate_size)
    layers, d, q, kv, f, n_ffn = _text_dims(bb.text)
    txt = layers * (2 * d * q + 2 * d * kv + n_ffn * d * f)
    return vis + txt
