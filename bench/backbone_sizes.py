"""Parameter counts and memory of every backbone family at its released size, computed (not measured).

    python -m bench.backbone_sizes

Counts come from `jax.eval_shape` of our Flax modules (equal to Hugging Face's counts: tests/
test_backbones_structures.py). Memory = count x bytes: weights in float32 (4 B) and bfloat16 (2 B);
full fine-tuning with Adam keeps float32 params + grads + two moments = 16 B per parameter. Activations,
the action head and framework overhead are NOT included: they depend on batch, window and remat.
"""

from __future__ import annotations

from bench import common

GIB = 2**30


def released():
    from vla_jax.models.clip_kosmos2 import ClipKosmos2Config
    from vla_jax.models.idefics_config import IdeficsConfig
    from vla_jax.models.kosmos2 import Kosmos2Config
    from vla_jax.models.llava import LlavaConfig
    from vla_jax.models.paligemma import PaliGemmaConfig
    from vla_jax.models.qwen2_5_vl import Qwen2_5_VLConfig
    from vla_jax.models.smolvlm import SmolVLMConfig

    return {
        "Kosmos-2 (microsoft/kosmos-2-patch14-224)": Kosmos2Config.full(),
        "CLIP ViT-B/16 + Kosmos-2 hybrid": ClipKosmos2Config.full(),
        "PaliGemma 2 3B (google/paligemma2-3b-pt-224)": PaliGemmaConfig.full(),
        "SmolVLM2 256M": SmolVLMConfig.full("256M"),
        "SmolVLM2 500M": SmolVLMConfig.full("500M"),
        "LLaVA-1.5 7B (llava-hf/llava-1.5-7b-hf)": LlavaConfig.full(),
        "Qwen2.5-VL 3B (Qwen/Qwen2.5-VL-3B-Instruct) at 224 px": Qwen2_5_VLConfig.full("3B"),
        "Qwen2.5-VL 3B at 448 px": Qwen2_5_VLConfig.full("3B", vision={"image_size": 448}),
        "IDEFICS 9B (HuggingFaceM4/idefics-9b), image tokens = cross-attention latents": IdeficsConfig.full(),
    }


def main(argv=None) -> int:
    args = common.parser("backbone_sizes", __doc__.split("\n\n")[0]).parse_args(argv)
    from vla_jax.models import backbone as backbone_lib

    rows, out = [], {}
    for name, config in released().items():
        n = backbone_lib.param_count(config)
        gib = {"float32": 4 * n / GIB, "bfloat16": 2 * n / GIB, "adam_full_finetune": 16 * n / GIB}
        out[name] = {"parameters": n, "image_size": config.image_size, "image_tokens": config.image_tokens, **gib}
        rows.append(
            [
                name,
                f"{n:,}",
                config.image_size,
                config.image_tokens,
                f"{gib['float32']:.2f}",
                f"{gib['bfloat16']:.2f}",
                f"{gib['adam_full_finetune']:.1f}",
            ]
        )
    common.print_table(
        "backbones at released sizes (computed; GiB)",
        ["backbone", "parameters", "image px", "image tokens", "f32 weights", "bf16 weights", "Adam full FT"],
        rows,
    )
    common.write_result(args.out, {"machine": common.machine_info(), "results": out})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
