"""Test fixture: a tiny random Hugging Face Kosmos-2 checkpoint (torch) for tests and for trying convert-hf.

HF initialises every LayerNorm to weight=1, bias=0 and leaves some biases at zero; a mapping bug
(swapped or transposed norm/bias) would then be invisible. We overwrite *every* parameter with
seeded random values so parity really exercises each tensor of the mapping table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_VISION_DEFAULTS = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
)
_TEXT_DEFAULTS = dict(
    vocab_size=256, embed_dim=32, layers=2, ffn_dim=64, attention_heads=2, max_position_embeddings=128
)


def tiny_hf_config_dict(**overrides: Any) -> dict[str, Any]:
    """Keyword overrides: `vision_<key>=`/`text_<key>=` for sub-config keys, or `latent_query_num=`."""
    vision, text = dict(_VISION_DEFAULTS), dict(_TEXT_DEFAULTS)
    latent_query_num = overrides.pop("latent_query_num", 8)
    for key, value in overrides.items():
        if key.startswith("vision_"):
            vision[key[len("vision_") :]] = value
        elif key.startswith("text_"):
            text[key[len("text_") :]] = value
        else:
            raise TypeError(f"unknown override {key!r}: use vision_<key>, text_<key> or latent_query_num")
    return {"vision_config": vision, "text_config": text, "latent_query_num": latent_query_num}


def build_tiny_random_kosmos2(*, seed: int = 0, **overrides: Any):
    """The torch model itself (eval mode, dropout off), every tensor random."""
    import torch
    from transformers import Kosmos2Config, Kosmos2ForConditionalGeneration

    cfg = tiny_hf_config_dict(**overrides)
    config = Kosmos2Config(
        text_config=cfg["text_config"], vision_config=cfg["vision_config"], latent_query_num=cfg["latent_query_num"]
    )
    torch.manual_seed(seed)
    model = Kosmos2ForConditionalGeneration(config).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            is_norm = isinstance(module, torch.nn.LayerNorm)
            for pname, param in module.named_parameters(recurse=False):
                # 0.2 keeps activations O(1) through a few layers; norm scales centred at 1 like trained ones.
                noise = torch.randn(param.shape, generator=gen) * 0.2
                param.copy_(1.0 + noise if is_norm and pname == "weight" else noise)
    return model


def save_tiny_random_kosmos2(out_dir: str | Path, *, seed: int = 0, **overrides: Any) -> Path:
    """Save a tiny random `Kosmos2ForConditionalGeneration` with save_pretrained (safetensors).

    Overrides: `vision_hidden_size=48`, `vision_num_hidden_layers=3`, `vision_patch_size=4`,
    `vision_image_size=16`, `text_embed_dim=64`, `text_layers=1`, `text_vocab_size=300`,
    `latent_query_num=4`, ... (any HF sub-config key with a `vision_`/`text_` prefix).
    """
    out = Path(out_dir)
    model = build_tiny_random_kosmos2(seed=seed, **overrides)
    model.save_pretrained(out, safe_serialization=True)
    return out


if __name__ == "__main__":  # python tests/tiny_hf.py OUT_DIR: a checkpoint to try convert-hf / verify-hf on
    import sys

    print(save_tiny_random_kosmos2(sys.argv[1]))
