"""Test fixture: tiny random Hugging Face checkpoints (torch) of every backbone family, to try convert-hf.

HF initialises every LayerNorm to weight=1, bias=0 and leaves some biases at zero; a mapping bug
(swapped or transposed norm/bias) would then be invisible. We overwrite *every* parameter with
seeded random values (norm weights around their HF centre: 1, or 0 for Gemma's (1 + w) norms)
so parity really exercises each tensor of the mapping table.

Overrides: `vision_<key>=` / `text_<key>=` for sub-config keys, other keys go to the top-level
config (e.g. `latent_query_num=4`, `scale_factor=4`, `tie_word_embeddings=False`).
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
    vision, text, top = _split((_VISION_DEFAULTS, _TEXT_DEFAULTS, {"latent_query_num": 8}), overrides)
    unknown = sorted(set(top) - {"latent_query_num"})
    if unknown:
        raise TypeError(f"unknown override {unknown[0]!r}: use vision_<key>, text_<key> or latent_query_num")
    return {"vision_config": vision, "text_config": text, "latent_query_num": top["latent_query_num"]}


def randomize_(model, seed: int, scale: float = 0.2, norm_centres: dict | None = None):
    """Every parameter of `model` seeded random, in place (module docstring).

    `scale`: the noise std (0.2 keeps tiny models' activations O(1) through a few layers; released widths
    want HF's 0.02). Norm weights get centre + noise, the centre being the current value (HF's init)
    unless `norm_centres` maps norm class names to it (for uninitialised memory, e.g. after `to_empty`).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            kind = type(module).__name__
            is_norm = isinstance(module, torch.nn.LayerNorm) or "RMSNorm" in kind
            for pname, param in module.named_parameters(recurse=False):
                noise = torch.randn(param.shape, generator=gen) * scale
                if is_norm and pname == "weight":
                    centre = param if norm_centres is None else norm_centres[kind]
                    param.copy_(centre + noise)
                else:
                    param.copy_(noise)
    return model


def _split(defaults: tuple[dict, dict, dict], overrides: dict[str, Any]) -> tuple[dict, dict, dict]:
    vision, text, top = (dict(d) for d in defaults)
    for key, value in overrides.items():
        if key.startswith("vision_"):
            vision[key[len("vision_") :]] = value
        elif key.startswith("text_"):
            text[key[len("text_") :]] = value
        else:
            top[key] = value
    return vision, text, top


def _build(model_cls, config, seed: int):
    import torch

    torch.manual_seed(seed)
    return randomize_(model_cls(config).eval(), seed)


def build_tiny_random_kosmos2(*, seed: int = 0, **overrides: Any):
    """The torch model itself (eval mode, dropout off), every tensor random."""
    from transformers import Kosmos2Config, Kosmos2ForConditionalGeneration

    cfg = tiny_hf_config_dict(**overrides)
    config = Kosmos2Config(
        text_config=cfg["text_config"], vision_config=cfg["vision_config"], latent_query_num=cfg["latent_query_num"]
    )
    return _build(Kosmos2ForConditionalGeneration, config, seed)


# PaliGemma 2 style: SigLIP + Gemma 2 (sliding window 8 < the test sequences, so it matters).
_PALIGEMMA = (
    dict(
        model_type="siglip_vision_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        vision_use_head=False,
    ),
    dict(
        model_type="gemma2",
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        query_pre_attn_scalar=8,
        sliding_window=8,
        max_position_embeddings=128,
    ),
    dict(image_token_index=255, projection_dim=32, vocab_size=256),
)
_SMOLVLM = (
    dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=4),
    dict(
        model_type="llama",
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
    ),
    dict(scale_factor=2, image_token_id=255),
)
# LLaVA-1.5 style: CLIP (3 layers: feature layer -2 leaves the last one unused) + Llama, 2-layer GELU projector.
_LLAVA = (
    dict(
        model_type="clip_vision_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    ),
    dict(
        model_type="llama",
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
    ),
    dict(image_token_index=255, vision_feature_layer=-2, vision_feature_select_strategy="default"),
)
# Qwen2.5-VL: at verify-hf's 224 px a 16 x 16 patch grid, 8 x 8 image tokens, 2 x 2 windows of 4 x 4 merge units.
_QWEN2_5_VL = (
    dict(
        depth=2,
        hidden_size=32,
        intermediate_size=48,
        num_heads=2,
        patch_size=14,
        window_size=112,
        out_hidden_size=32,
        fullatt_block_indexes=[1],
    ),
    dict(
        vocab_size=256,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
        bos_token_id=1,
        eos_token_id=2,
    ),
    dict(
        image_token_id=255,
        video_token_id=254,
        vision_start_token_id=252,
        vision_end_token_id=253,
    ),
)
# IDEFICS (Flamingo): CLIP-like tower, 2-block resampler with 4 latents, 2 cross-attention groups of 2 LLaMA blocks.
_IDEFICS = (
    dict(embed_dim=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8),
    dict(resampler_depth=2, resampler_n_heads=2, resampler_head_dim=8, resampler_n_latents=4),
    dict(
        vocab_size=256,
        additional_vocab_size=2,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        cross_layer_interval=2,
        use_resampler=True,
        max_position_embeddings=128,
    ),
)
_CLIP_VISION = dict(
    hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=3, image_size=32, patch_size=8
)


def build_tiny_random_paligemma(*, seed: int = 0, **overrides: Any):
    """`PaliGemmaForConditionalGeneration`; `text_model_type="gemma"` for PaliGemma 1's Gemma text."""
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration

    vision, text, top = _split(_PALIGEMMA, overrides)
    if text["model_type"] == "gemma":
        for key in ("query_pre_attn_scalar", "sliding_window"):
            text.pop(key, None)
    top["projection_dim"] = text["hidden_size"]
    return _build(
        PaliGemmaForConditionalGeneration, PaliGemmaConfig(vision_config=vision, text_config=text, **top), seed
    )


def build_tiny_random_smolvlm(*, seed: int = 0, **overrides: Any):
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration

    vision, text, top = _split(_SMOLVLM, overrides)
    return _build(SmolVLMForConditionalGeneration, SmolVLMConfig(vision_config=vision, text_config=text, **top), seed)


def build_tiny_random_llava(*, seed: int = 0, **overrides: Any):
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    vision, text, top = _split(_LLAVA, overrides)
    top.setdefault("image_seq_length", (vision["image_size"] // vision["patch_size"]) ** 2)
    return _build(LlavaForConditionalGeneration, LlavaConfig(vision_config=vision, text_config=text, **top), seed)


def build_tiny_random_qwen2_5_vl(*, seed: int = 0, **overrides: Any):
    """`Qwen2_5_VLForConditionalGeneration`; the text config's hidden_size must equal vision out_hidden_size."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    vision, text, top = _split(_QWEN2_5_VL, overrides)
    vision["out_hidden_size"] = text["hidden_size"]
    config = Qwen2_5_VLConfig(vision_config=vision, text_config=text, **top)
    return _build(Qwen2_5_VLForConditionalGeneration, config, seed)


def build_tiny_random_qwen2_vl(*, seed: int = 0, **overrides: Any):
    """`Qwen2VLForConditionalGeneration`: Qwen2.5-VL's tiny text config; vision keys embed_dim / mlp_ratio."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    defaults = (dict(depth=2, embed_dim=32, mlp_ratio=2, num_heads=2, patch_size=14), *_QWEN2_5_VL[1:])
    vision, text, top = _split(defaults, overrides)
    vision["hidden_size"] = text["hidden_size"]  # Qwen2-VL's vision `hidden_size` is the merger's output (LM) width
    config = Qwen2VLConfig(vision_config=vision, text_config=text, **top)
    return _build(Qwen2VLForConditionalGeneration, config, seed)


def build_tiny_random_idefics(*, seed: int = 0, **overrides: Any):
    """`IdeficsForVisionText2Text`; overrides `vision_<key>=`, `perceiver_<key>=`, other keys top-level
    (the LM's keys live there in IdeficsConfig)."""
    from transformers import IdeficsConfig, IdeficsForVisionText2Text

    vision, perceiver, top = (dict[str, Any](d) for d in _IDEFICS)
    for key, value in overrides.items():
        for prefix, target in (("vision_", vision), ("perceiver_", perceiver)):
            if key.startswith(prefix):
                target[key[len(prefix) :]] = value
                break
        else:
            top[key] = value
    config = IdeficsConfig(vision_config=vision, perceiver_config=perceiver, **top)
    return _build(IdeficsForVisionText2Text, config, seed)


def build_tiny_random_clip_vision(*, seed: int = 0, **overrides: Any):
    """`CLIPVisionModel` (plain keys, no vision_/text_ prefix)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    return _build(CLIPVisionModel, CLIPVisionConfig(**{**_CLIP_VISION, **overrides}), seed)


BUILDERS = {
    "kosmos-2": build_tiny_random_kosmos2,
    "paligemma": build_tiny_random_paligemma,
    "smolvlm": build_tiny_random_smolvlm,
    "llava": build_tiny_random_llava,
    "qwen2_5_vl": build_tiny_random_qwen2_5_vl,
    "qwen2_vl": build_tiny_random_qwen2_vl,
    "idefics": build_tiny_random_idefics,
    "clip_vision_model": build_tiny_random_clip_vision,
}


def save_tiny_random(model_type: str, out_dir: str | Path, *, seed: int = 0, **overrides: Any) -> Path:
    """save_pretrained (safetensors) of a tiny random model of `model_type` (a key of `BUILDERS`)."""
    out = Path(out_dir)
    BUILDERS[model_type](seed=seed, **overrides).save_pretrained(out, safe_serialization=True)
    return out


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


# python tests/tiny_hf.py OUT_DIR [MODEL_TYPE]: a checkpoint to try convert-hf / verify-hf on (default kosmos-2)
if __name__ == "__main__":
    import sys

    print(save_tiny_random(sys.argv[2] if len(sys.argv) > 2 else "kosmos-2", sys.argv[1]))
