"""Builders for runtime tests: a tiny tokenizer (tokenizers library) and tiny export folders.

No jax here: runtime tests must run in an environment with torch only. The
export is written by `vla_runtime.bundle.write_export` from random torch weights,
the same writer `vla-jax export` uses.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from vla_runtime.bundle import write_export
from vla_runtime.policy_io import Preprocessing
from vla_runtime.structures import PolicyModel

SENTENCES = [
    "Navigate around the obstacle on the left side and reach the target",
    "Navigate around the obstacle on the right side and reach the target",
    "pick up the red block and put it in the gray basket",
    "move forward slowly, then turn left",
]


def tiny_tokenizer(vocab_size: int = 120) -> Tokenizer:
    """A BPE tokenizer with Kosmos-2's special ids (<s>=0, <pad>=1, </s>=2) and a `<s> $A </s>` template."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False
    )
    tok.train_from_iterator(SENTENCES * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return tok


def tiny_policy_config(
    structure: str = "policy_head",
    head: str = "lstm",
    window: int = 3,
    chunk: int = 2,
    action_dim: int = 3,
    has_gripper: bool = False,
    discrete_decoding: str = "autoregressive",
    interleaved_attention: str = "causal",
) -> dict:
    return {
        "discrete_decoding": discrete_decoding,
        "interleaved_attention": interleaved_attention,
        "structure": structure,
        "head": head,
        "window_size": window,
        "action_chunk": chunk,
        "action_dim": action_dim,
        "has_gripper": has_gripper,
        "head_hidden_size": 16,
        "head_layers": 2,
        "head_heads": 2,
        "num_bins": 32,
        "tanh_actions": True,
    }


def tiny_backbone_config(model_type: str = "kosmos-2", vocab_size: int = 128) -> dict:
    """A few-KB backbone of each family at 16 px (HF config.json layout, as exports store it)."""
    if model_type == "kosmos-2":
        return {
            "model_type": "kosmos-2",
            "vision_config": dict(
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                image_size=16,
                patch_size=8,
            ),
            "text_config": dict(
                vocab_size=vocab_size,
                embed_dim=16,
                layers=2,
                ffn_dim=32,
                attention_heads=2,
                max_position_embeddings=256,
            ),
            "latent_query_num": 3,
        }
    text = dict(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=256,
    )
    vision = dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=16, patch_size=4
    )
    if model_type == "paligemma":  # PaliGemma 2: Gemma 2 text, a sliding window shorter than the interleaved window
        text.update(model_type="gemma2", sliding_window=24, final_logit_softcapping=30.0, query_pre_attn_scalar=8)
        return {
            "model_type": "paligemma",
            "projection_dim": 16,
            "image_token_id": vocab_size - 1,
            "text_config": text,
            "vision_config": dict(model_type="siglip_vision_model", **vision),
        }
    if model_type == "smolvlm":
        return {
            "model_type": "smolvlm",
            "scale_factor": 2,
            "image_token_id": vocab_size - 1,
            "tie_word_embeddings": True,
            "text_config": {**text, "tie_word_embeddings": True},
            "vision_config": vision,
        }
    if model_type == "llava":  # CLIP tower, feature layer -2 of 2 (class token dropped), 2-layer GELU projector
        return {
            "model_type": "llava",
            "image_token_id": vocab_size - 1,
            "vision_feature_layer": -2,
            "vision_feature_select_strategy": "default",
            "text_config": {**text, "model_type": "llama"},
            "vision_config": dict(vision, model_type="clip_vision_model", num_hidden_layers=2, projection_dim=16),
        }
    if model_type == "qwen2_5_vl":  # patch 4 x 2x2 merge: a 16-px frame is 4 merged tokens; 3-D rotary positions
        return {
            "model_type": "qwen2_5_vl",
            "image_token_id": vocab_size - 1,
            "video_token_id": vocab_size - 2,
            "vision_start_token_id": vocab_size - 4,
            "vision_end_token_id": vocab_size - 3,
            "text_config": {
                **text,
                "model_type": "qwen2_5_vl_text",
                "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
                "bos_token_id": 0,
                "eos_token_id": 2,
            },
            "vision_config": dict(
                depth=1,
                hidden_size=16,
                intermediate_size=32,
                num_heads=2,
                patch_size=4,
                window_size=16,
                out_hidden_size=16,
                fullatt_block_indexes=[0],
                image_size=16,
            ),
        }
    if model_type == "idefics":  # Flamingo: the images reach the LM by gated cross-attention (media, not slots)
        return {
            "model_type": "idefics",
            "vocab_size": vocab_size - 2,
            "additional_vocab_size": 2,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "cross_layer_interval": 1,
            "use_resampler": True,
            "max_position_embeddings": 256,
            "perceiver_config": dict(
                resampler_depth=1, resampler_n_heads=2, resampler_head_dim=4, resampler_n_latents=3
            ),
            "vision_config": dict(
                embed_dim=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                image_size=16,
                patch_size=4,
            ),
        }
    raise ValueError(f"no tiny config for {model_type!r}")


FAMILIES = ("kosmos-2", "paligemma", "smolvlm", "idefics")


def statistics(action_dim: int = 3, mode: str = "bounds") -> dict:
    rng = np.random.default_rng(0)
    lo = -1.0 - rng.random(action_dim)
    hi = 1.0 + rng.random(action_dim)
    return {
        "dataset": "tiny",
        "normalization": mode,
        "action": {
            "mean": ((lo + hi) / 2).tolist(),
            "std": ((hi - lo) / 4).tolist(),
            "min": lo.tolist(),
            "max": hi.tolist(),
            "q01": (lo * 0.9).tolist(),
            "q99": (hi * 0.9).tolist(),
            "mask": [True] * action_dim,
        },
    }


def write_tiny_export(
    out_dir: str,
    seed: int = 0,
    dtype: str = "float32",
    model_type: str = "kosmos-2",
    backbone: dict | None = None,
    **policy_kwargs,
) -> str:
    """A random export of `tiny_policy_config(**policy_kwargs)` on `backbone` (default: `model_type`'s tiny one)."""
    policy = tiny_policy_config(**policy_kwargs)
    backbone = backbone or tiny_backbone_config(model_type)
    config = {"backbone": backbone, "policy": policy}
    torch.manual_seed(seed)
    model = PolicyModel.from_config(config)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    write_export(
        out_dir,
        state_dict=model.export_state_dict(),
        policy_config=policy,
        backbone_config=backbone,
        tokenizer_json=tiny_tokenizer().to_str(),
        tokenizer_config={"instruction_length": 12, "pad_id": 1, "add_special_tokens": True},
        preprocessing=Preprocessing(image_size=(16, 16)).to_dict(),
        statistics=statistics(policy["action_dim"]),
        model_card="# tiny test export\n",
        dtype=dtype,
    )
    return out_dir


def read_config(export_dir: str) -> dict:
    with open(os.path.join(export_dir, "config.json")) as f:
        return json.load(f)


SMALL = {  # the benchmark-sized model (bench/ issue): vision 4x256 at 112 px, text 4x512, window 8, chunk 4
    "backbone": {
        "model_type": "kosmos-2",
        "vision_config": dict(
            hidden_size=256,
            intermediate_size=1024,
            num_hidden_layers=4,
            num_attention_heads=4,
            image_size=112,
            patch_size=14,
        ),
        "text_config": dict(
            vocab_size=1024, embed_dim=512, layers=4, ffn_dim=2048, attention_heads=8, max_position_embeddings=2048
        ),
        "latent_query_num": 64,
    },
    "policy": {
        "window_size": 8,
        "action_chunk": 4,
        "action_dim": 2,
        "has_gripper": False,
        "head_hidden_size": 256,
        "head_layers": 2,
        "head_heads": 4,
        "num_bins": 64,
        "tanh_actions": True,
    },
}


def write_small_export(out_dir: str, structure: str = "policy_head", head: str = "lstm", seed: int = 0) -> str:
    """Random weights at the benchmark size (`python runtime_helpers.py OUT [structure head]`)."""
    policy = {**SMALL["policy"], "structure": structure, "head": head}
    config = {"backbone": SMALL["backbone"], "policy": policy}
    torch.manual_seed(seed)
    model = PolicyModel.from_config(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(
                torch.randn_like(p) * (0.02 if p.ndim > 1 else 0.1)
                + (1.0 if "norm" in name and name.endswith("weight") else 0.0)
            )
    write_export(
        out_dir,
        state_dict=model.export_state_dict(),
        policy_config=policy,
        backbone_config=SMALL["backbone"],
        tokenizer_json=tiny_tokenizer().to_str(),
        tokenizer_config={"instruction_length": 16, "pad_id": 1, "add_special_tokens": True},
        preprocessing=Preprocessing(image_size=(112, 112)).to_dict(),
        statistics=statistics(2),
        model_card="# small random export (benchmarks)\n",
    )
    return out_dir


if __name__ == "__main__":
    import sys

    write_small_export(sys.argv[1], *sys.argv[2:4])
    print(sys.argv[1])
