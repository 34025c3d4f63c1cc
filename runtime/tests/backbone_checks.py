"""Checks every backbone adapter must pass against its own Hugging Face class (tiny random models, offline).

A family's test module supplies a tiny HF model and the HF expression of "image +
text through the LM"; the checks here are the same for every family:

* the adapter built on the meta device and assigned the HF model's tensors (from a file)
  holds exactly those tensors, unchanged (no copy: peak memory is the file; no HF
  initialiser touched them), tied ones tied, and rebuilds HF's non-persistent
  buffers equal to HF's;
* `decode` of the adapter's own sequence equals HF's last hidden state;
* cached incremental `decode` (blocks of 4, 1, 1, rest) equals one full `decode`.
"""

from __future__ import annotations

import os

import torch
from safetensors.torch import load_file, save_file

from vla_runtime.backbones import build_backbone


def randomize(hf_model, seed: int = 0) -> None:
    """Every parameter random: HF initialises norms to 1 (or 0 for Gemma's 1 + w) and some biases to 0, which
    would hide a swapped or dropped tensor."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in hf_model.named_parameters():
            p.copy_(
                torch.randn(p.shape, generator=gen) * 0.2
                + (1.0 if "norm" in name and name.endswith("weight") and p.abs().mean() > 0.5 else 0.0)
            )


def save_and_reload(hf_model, backbone: dict, tmp_path, dtype=torch.float32):
    """The HF model's tensors in a safetensors file as an export holds them (the HF class's state-dict names,
    tied copies left out) -> the adapter built on meta and assigned the file's tensors, as `Policy.load` does."""
    tied = dict(getattr(hf_model, "all_tied_weights_keys", None) or {})
    path = os.path.join(str(tmp_path), "backbone.safetensors")
    os.makedirs(str(tmp_path), exist_ok=True)
    save_file({k: v.contiguous() for k, v in hf_model.state_dict().items() if k not in tied}, path)
    state = load_file(path)
    with torch.device("meta"):
        adapter = build_backbone(backbone, dtype)
    adapter.assign(state, path)
    ptrs = {t.data_ptr() for t in state.values()}
    assert all(p.data_ptr() in ptrs for p in adapter.model.parameters()), "a parameter was copied, not assigned"
    reference = load_file(path)
    for name, tensor in adapter.model.state_dict().items():  # nothing loaded was re-initialised; tied ones tied
        assert torch.equal(tensor, reference[name if name in reference else tied[name]]), name
    ref_buffers = dict(hf_model.named_buffers())
    for name, buf in adapter.model.named_buffers():
        assert torch.equal(buf, ref_buffers[name].to(buf.dtype)), name
    return adapter


@torch.no_grad()
def check_cached_decode(adapter, seq_len: int = 11, seed: int = 0, atol: float = 1e-5) -> float:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, seq_len, adapter.hidden_size, generator=gen) * 0.5
    full = adapter.decode(x)
    cache = adapter.new_cache()
    cuts = [0, 4, 5, 6, seq_len]
    parts = [adapter.decode(x[:, a:b], None, cache) for a, b in zip(cuts, cuts[1:])]
    assert cache.length == seq_len
    diff = float((torch.cat(parts, dim=1) - full).abs().max())
    assert diff <= atol, diff
    assert float(full.abs().max()) > 1e-2
    return diff


@torch.no_grad()
def check_logits_of_last_rows(adapter, rows: int = 7) -> None:
    """`lm_logits(h, last)` (what greedy action decoding uses) == the last columns of the full logits."""
    h = torch.randn(2, 3, adapter.hidden_size)
    full = adapter.lm_logits(h)
    assert full.shape == (2, 3, adapter.vocab_size) and full.dtype == torch.float32
    assert torch.allclose(adapter.lm_logits(h, rows), full[..., -rows:], atol=1e-6)
