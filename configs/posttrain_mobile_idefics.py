"""Post-train an IDEFICS 9B policy (Flamingo: CLIP ViT-H/14 + perceiver resampler + LLaMA-7B with gated
cross-attention every 4th block; RoboVLMs' Flamingo family) on the mobile-robot episodes.

    vla-jax convert-hf --src PATH/TO/HuggingFaceM4/idefics-9b --out /ckpt/idefics9b
    vla-jax verify-hf  --src PATH/TO/HuggingFaceM4/idefics-9b --num-layers 2   # 2 vision layers, 1 group of 4 LM blocks
    vla-jax convert-episodes --src H5_DIR --out /data/mobile_rlds_224 --image-size 224 --action-dim 2
    vla-jax train --config configs/posttrain_mobile_idefics.py:/data/mobile_rlds_224,/ckpt/idefics9b \\
        --workdir /runs/mobile_idefics

ARG = "RLDS_DIR,INIT_FROM[,TOKENIZER_DIR]" (see `vla_jax.train.posttrain`); the architecture comes from
INIT_FROM. Frames are 224 px; each frame is ONE `<image>` slot in the sequence and its 64 resampler latents
are read by the cross-attention layers (vla_jax/models/idefics.py). Policy-head structure, LSTM head,
window 8, chunk 8, 2-D actions. LoRA rank 32 on the LLaMA attention and MLP (as the other families) AND,
as Flamingo / RoboFlamingo train exactly these, on the gated cross-attention layers' projections and the
perceiver resampler's; the vision tower and the embeddings frozen (full fine-tuning:
--config.lora.enabled=false --config.freeze.freeze_backbone=false --config.freeze.train_vision=true
--config.freeze.train_text_embedding=true).

What to expect. Computed, not measured (python -m bench.backbone_sizes): 8,929,675,280 backbone parameters
(equal to HF's IdeficsForVisionText2Text, tests/test_backbones_structures.py), 33.3 GiB of float32 weights
(16.6 GiB bf16); full fine-tuning with Adam needs 133 GiB before activations, so use LoRA, FSDP or several
large-memory GPUs. The sequence per frame is short (1 image slot + 32 instruction + 1 action token = 34
positions), the cross-attention reads 64 latents per frame. Measured: on tiny random weights this config
trains end to end on CPU, exports and steps in the torch runtime (tests/test_backbones_train.py). Not measured:
speed or loss on real episodes (no GPU, no hub here).
"""

from typing import Any

from vla_jax.models.idefics_config import IdeficsConfig
from vla_jax.train.lora import DEFAULT_TARGET
from vla_jax.train.posttrain import mobile_posttrain_config

# + the cross-attention layers' q/k/v/o and the resampler's attention and MLP projections
CROSS_ATTENTION_TARGET = (
    rf"{DEFAULT_TARGET}|text_model/layers/cross/(q_proj|k_proj|v_proj|o_proj)/kernel$"
    r"|perceiver_resampler/layers/(attn/(q_proj|k_proj|v_proj|output_proj)|mlp/(fc|c_proj))/kernel$"
)


def get_config(arg: str = "/data/mobile_rlds_224,/ckpt/idefics9b"):
    config = mobile_posttrain_config(arg, IdeficsConfig.full())
    lora: Any = config.lora  # a ConfigDict (ml_collections types its attributes as a union)
    lora.target = CROSS_ATTENTION_TARGET
    return config
