"""`vla-jax verify-hf` on freshly built random HF models: tiny ones with configs the tests do not use, and the
released architectures (PaliGemma 2 3B, SmolVLM2 500M, LLaVA-1.5 7B, Qwen2.5-VL 3B and IDEFICS 9B truncated to 2
layers (IDEFICS: 2 vision layers, the LM to one whole cross-attention group of 4 blocks),
SmolVLM2 256M at full depth).

    python -m bench.backbones_verify --quick            # the tiny fresh models only (about a minute)
    flock /work/coord/bigmem.lock python -m bench.backbones_verify --released   # + released sizes (GBs of RAM)
    flock /work/coord/bigmem.lock python -m bench.backbones_verify --released --model-type llava   # one family

Each model is built with transformers from a config (the released ones from our `full()` configs, transcribed in
docs/backbones.md), every tensor random (HF's std 0.02 at released widths, norms around their centre), saved
with save_pretrained (bf16 at released sizes, as the hub files are), then checked with the real CLI in a
subprocess: the JSON line per model is what the CLI prints, plus its wall time and the load average.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common

# Configs the tests do not use (tests/test_backbones_parity.py, test_kosmos2_parity.py, test_convert_hf.py).
TINY = {
    "paligemma2 (gemma2 text)": (
        "paligemma",
        dict(
            text_hidden_size=64,
            text_num_hidden_layers=3,
            text_head_dim=16,
            text_num_attention_heads=4,
            text_num_key_value_heads=1,
            text_query_pre_attn_scalar=16,
            text_sliding_window=6,
            vision_image_size=48,
            vision_patch_size=12,
            vision_hidden_size=40,
            vision_num_attention_heads=5,
            vision_num_hidden_layers=3,
        ),
    ),
    "smolvlm": (
        "smolvlm",
        dict(
            scale_factor=3,
            vision_image_size=36,
            vision_patch_size=6,
            vision_hidden_size=24,
            vision_num_attention_heads=4,
            text_hidden_size=48,
            text_num_attention_heads=6,
            text_num_key_value_heads=3,
            text_head_dim=8,
            text_num_hidden_layers=3,
            text_vocab_size=500,
            text_rope_theta=50000.0,
        ),
    ),
    "llava (layer -3 of 4, full)": (
        "llava",
        dict(
            vision_hidden_size=40,
            vision_num_attention_heads=5,
            vision_num_hidden_layers=4,
            vision_image_size=24,
            vision_patch_size=6,
            vision_feature_layer=-3,
            vision_feature_select_strategy="full",
            text_hidden_size=48,
            text_num_attention_heads=6,
            text_num_key_value_heads=2,
            text_head_dim=8,
            text_num_hidden_layers=3,
            text_vocab_size=500,
            text_rope_theta=50000.0,
        ),
    ),
    "qwen2_5_vl": (
        "qwen2_5_vl",
        dict(
            vision_hidden_size=48,
            vision_num_heads=3,
            vision_intermediate_size=80,
            vision_depth=3,
            vision_window_size=56,
            vision_fullatt_block_indexes=[1],
            text_hidden_size=48,
            text_num_attention_heads=6,
            text_num_key_value_heads=2,
            text_num_hidden_layers=3,
            text_vocab_size=500,
            text_rope_parameters={"rope_type": "default", "rope_theta": 50000.0, "mrope_section": [2, 1, 1]},
            image_token_id=499,
            video_token_id=498,
            vision_start_token_id=496,
            vision_end_token_id=497,
        ),
    ),
    "idefics (qk norms, vector gates, 3 blocks per cross layer)": (
        "idefics",
        dict(
            vision_embed_dim=40,
            vision_num_attention_heads=5,
            vision_num_hidden_layers=3,
            vision_intermediate_size=80,
            vision_image_size=24,
            vision_patch_size=6,
            perceiver_resampler_depth=3,
            perceiver_resampler_n_heads=3,
            perceiver_resampler_head_dim=8,
            perceiver_resampler_n_latents=5,
            perceiver_qk_layer_norms_perceiver=True,
            vocab_size=500,
            additional_vocab_size=3,
            hidden_size=48,
            intermediate_size=80,
            num_hidden_layers=6,
            num_attention_heads=6,
            cross_layer_interval=3,
            qk_layer_norms=True,
            alpha_type="vector",
            rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 50000.0},
        ),
    ),
    "kosmos-2": (
        "kosmos-2",
        dict(
            vision_hidden_size=40,
            vision_num_attention_heads=5,
            vision_patch_size=4,
            vision_image_size=20,
            text_embed_dim=48,
            text_attention_heads=3,
            text_layers=3,
            text_ffn_dim=80,
            text_vocab_size=400,
            latent_query_num=6,
        ),
    ),
}


def _run_verify(args: list[str]) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "vla_jax.cli", "verify-hf", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=common.repo_root(),
    )
    wall = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(
            f"verify-hf {' '.join(args)} printed no JSON (exit {proc.returncode}): {proc.stderr[-2000:]}"
        )
    return {
        **json.loads(lines[-1]),
        "exit_code": proc.returncode,
        "wall_s": round(wall, 1),
        "load_avg_1m": os.getloadavg()[0],
    }


def _released_model(config, out: Path, seed: int, saved_layers: int | None = None) -> Path:
    """A random HF model of `config` (ours), saved in bf16 shards, built without a float32 copy.

    `saved_layers`: write only the tensors `verify-hf --num-layers saved_layers` reads (every non-layer tensor
    at full size, the first layers of both towers) under the released config.json: a 7B checkpoint's check
    without writing the ~13 GiB that the check never opens."""
    import torch
    import transformers

    from tests.tiny_hf import randomize_
    from vla_jax.convert.hf_checkpoint import truncated

    hf = truncated(config, saved_layers).to_hf_dict()
    classes = {
        "paligemma": (transformers.PaliGemmaConfig, transformers.PaliGemmaForConditionalGeneration),
        "smolvlm": (transformers.SmolVLMConfig, transformers.SmolVLMForConditionalGeneration),
        "llava": (transformers.LlavaConfig, transformers.LlavaForConditionalGeneration),
        "qwen2_5_vl": (transformers.Qwen2_5_VLConfig, transformers.Qwen2_5_VLForConditionalGeneration),
        "idefics": (transformers.IdeficsConfig, transformers.IdeficsForVisionText2Text),
    }
    cfg_cls, model_cls = classes[hf["model_type"]]
    torch.set_default_dtype(torch.bfloat16)  # the hub files' dtype, and half the memory
    try:
        with torch.device("meta"):  # no init pass over billions of weights: every one is overwritten below
            model = model_cls(cfg_cls(**hf)).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    model = model.to_empty(device="cpu")
    model.tie_weights()
    centres = {
        "LayerNorm": 1.0,
        "LlamaRMSNorm": 1.0,
        "GemmaRMSNorm": 0.0,
        "Gemma2RMSNorm": 0.0,
        "Qwen2_5_VLRMSNorm": 1.0,
        "IdeficsRMSNorm": 1.0,
    }
    randomize_(model, seed, scale=0.02, norm_centres=centres)
    model.save_pretrained(out, safe_serialization=True, max_shard_size="1GB")
    del model
    if saved_layers is not None:  # the released depth in config.json; --num-layers cuts both sides back
        cfg_cls(**config.to_hf_dict()).to_json_file(out / "config.json")
    return out


def main(argv=None) -> int:
    p = common.parser("backbones_verify", __doc__.split("\n\n")[0])
    p.add_argument("--released", action="store_true", help="also the released architectures (needs ~14 GB RAM)")
    p.add_argument("--workdir", default=None, help="where the random models go (default: a temp dir, deleted)")
    p.add_argument("--model-type", default=None, help="only this family's models (e.g. llava); default: all")
    args = p.parse_args(argv)
    wanted = lambda model_type: args.model_type in (None, model_type)  # noqa: E731
    from tests import tiny_hf
    from vla_jax.models.idefics_config import IdeficsConfig
    from vla_jax.models.llava import LlavaConfig
    from vla_jax.models.paligemma import PaliGemmaConfig
    from vla_jax.models.qwen2_5_vl import Qwen2_5_VLConfig
    from vla_jax.models.smolvlm import SmolVLMConfig

    rows, results = [], {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        root = Path(tmp)
        for name, (model_type, overrides) in TINY.items():
            if not wanted(model_type):
                continue
            path = tiny_hf.save_tiny_random(model_type, root / model_type, seed=21, **overrides)
            results[name] = _run_verify(["--src", str(path), "--seed", "5"])
        if wanted("kosmos-2"):
            clip = tiny_hf.save_tiny_random(
                "clip_vision_model",
                root / "clip",
                seed=22,
                hidden_size=64,
                num_attention_heads=4,
                intermediate_size=96,
                patch_size=4,
                image_size=20,
            )
            results["clip-kosmos-2 (64-wide CLIP tower)"] = _run_verify(
                ["--src", str(root / "kosmos-2"), "--vision-src", str(clip), "--seed", "5"]
            )
        if args.released and not args.quick:
            released = {
                "google/paligemma2-3b-pt-224 (random)": (PaliGemmaConfig.full(), ["--num-layers", "2"]),
                "SmolVLM2-500M (random)": (SmolVLMConfig.full("500M"), ["--num-layers", "2"]),
                "SmolVLM2-256M (random, full depth)": (SmolVLMConfig.full("256M"), []),
                "llava-hf/llava-1.5-7b-hf (random, layers 0-1 saved)": (LlavaConfig.full(), ["--num-layers", "2"]),
                "Qwen/Qwen2.5-VL-3B-Instruct (random)": (Qwen2_5_VLConfig.full("3B"), ["--num-layers", "2"]),
                "HuggingFaceM4/idefics-9b (random, 2 vision layers + 1 group of 4 LM blocks saved)": (
                    IdeficsConfig.full(),
                    ["--num-layers", "2"],
                ),
            }
            for i, (name, (config, extra)) in enumerate(released.items()):
                if not wanted(config.model_type):
                    continue
                saved = 2 if config.model_type in ("llava", "idefics") else None
                path = _released_model(config, root / f"released{i}", seed=30 + i, saved_layers=saved)
                results[name] = _run_verify(["--src", str(path), "--seed", "5", "--batch", "1", *extra])
                subprocess.run(["rm", "-rf", str(path)], check=True)
    for name, r in results.items():
        rows.append(
            [
                name,
                r.get("num_layers") or "all",
                r["vision_tower"],
                r["projector"],
                r["lm_last_hidden"],
                r["ok"],
                r["wall_s"],
                r["load_avg_1m"],
            ]
        )
    common.print_table(
        "verify-hf on fresh random HF models (max |ours - HF|, float32, CPU)",
        ["model", "layers", "vision tower", "projector", "LM last hidden", "ok", "wall s", "load"],
        rows,
    )
    common.write_result(args.out, {"machine": common.machine_info(), "results": results})
    return 0 if all(r["ok"] and r["exit_code"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
