"""Post-train a LLaVA-1.5 policy (CLIP ViT-L/14-336 + 2-layer GELU projector + Vicuna 7B; RoboVLMs' LLaVA) on the
mobile-robot episodes.

    vla-jax convert-hf --src PATH/TO/llava-hf/llava-1.5-7b-hf --out /ckpt/llava15
    vla-jax verify-hf  --src PATH/TO/llava-hf/llava-1.5-7b-hf --num-layers 2   # fits a 24 GiB machine
    vla-jax convert-episodes --src H5_DIR --out /data/mobile_rlds_336 --image-size 336 --action-dim 2
    vla-jax train --config configs/posttrain_mobile_llava.py:/data/mobile_rlds_336,/ckpt/llava15 \\
        --workdir /runs/mobile_llava

ARG = "RLDS_DIR,INIT_FROM[,TOKENIZER_DIR]" (see `vla_jax.train.posttrain`); the architecture and the
image size (336: 576 image tokens per frame) come from INIT_FROM. Policy-head structure, LSTM head,
window 8, chunk 8, 2-D actions; LoRA rank 32 on the Llama attention and MLP, the CLIP tower and the
embeddings frozen (full fine-tuning: --config.lora.enabled=false --config.freeze.freeze_backbone=false
--config.freeze.train_vision=true --config.freeze.train_text_embedding=true). Causal attention.

What to expect. Computed, not measured (python -m bench.backbone_sizes): 7,063,427,072 backbone
parameters, 26.3 GiB of float32 weights (13.2 GiB bf16); full fine-tuning with Adam needs 105 GiB before
activations, so use LoRA, FSDP or several large-memory GPUs. Each frame is 576 image tokens: the policy-head structure
decodes one sequence per frame of 576 + 32 (instruction) + 1 (action token) = 609 positions, 8 per sample. Measured: on
tiny random weights the same config trains end to end on CPU (tests/test_backbones_train.py). Not measured:
speed or loss on real episodes (this project's machines have no GPU and no hub access).
"""

from vla_jax.models.llava import LlavaConfig
from vla_jax.train.posttrain import mobile_posttrain_config


def get_config(arg: str = "/data/mobile_rlds_336,/ckpt/llava15"):
    return mobile_posttrain_config(arg, LlavaConfig.full())
