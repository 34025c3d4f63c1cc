"""Post-train a Qwen2.5-VL 3B policy (window-attention ViT + Qwen2 with 3-D rotary positions) on the mobile episodes.

    vla-jax convert-hf --src PATH/TO/Qwen/Qwen2.5-VL-3B-Instruct --out /ckpt/qwen2_5_vl_3b
    vla-jax verify-hf  --src PATH/TO/Qwen/Qwen2.5-VL-3B-Instruct --num-layers 2   # fits a 24 GiB machine
    vla-jax convert-episodes --src H5_DIR --out /data/mobile_rlds_224 --image-size 224 --action-dim 2
    vla-jax train --config configs/posttrain_mobile_qwen2_5_vl.py:/data/mobile_rlds_224,/ckpt/qwen2_5_vl_3b \\
        --workdir /runs/mobile_qwen2_5_vl

ARG = "RLDS_DIR,INIT_FROM[,TOKENIZER_DIR]" (see `vla_jax.train.posttrain`); the architecture comes from
INIT_FROM. Frames are 224 px (64 image tokens; convert-hf writes the frame side into the converted config,
224 unless the HF folder's vision_config has an `image_size`; 448 px = 256 tokens). Policy-head structure,
LSTM head, window 8, chunk 8, 2-D actions; LoRA rank 32 on the Qwen2 attention and MLP, the vision tower and
the embeddings frozen (full fine-tuning: --config.lora.enabled=false --config.freeze.freeze_backbone=false
--config.freeze.train_vision=true --config.freeze.train_text_embedding=true).

What to expect. Computed, not measured (python -m bench.backbone_sizes): 3,754,622,976 backbone parameters,
14.0 GiB of float32 weights (7.0 GiB bf16); full fine-tuning with Adam needs 56 GiB before activations, so use
LoRA, FSDP or a large-memory GPU. Measured: the tiny model of this family trains through every structure on
CPU (tests/test_backbones_structures.py). Not measured: this config end to end, speed or loss on real episodes
(no GPU, no hub here).
"""

from vla_jax.models.qwen2_5_vl import Qwen2_5_VLConfig
from vla_jax.train.posttrain import mobile_posttrain_config


def get_config(arg: str = "/data/mobile_rlds_224,/ckpt/qwen2_5_vl_3b"):
    return mobile_posttrain_config(arg, Qwen2_5_VLConfig.full("3B"))
