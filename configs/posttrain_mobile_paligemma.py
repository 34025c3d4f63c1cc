"""Post-train a PaliGemma 2 policy (SigLIP + Gemma 2, RoboVLMs' PaliGemma) on the mobile-robot episodes.

    vla-jax convert-hf --src PATH/TO/google/paligemma2-3b-pt-224 --out /ckpt/paligemma2
    vla-jax verify-hf  --src PATH/TO/google/paligemma2-3b-pt-224 --num-layers 2   # fits a 24 GiB machine
    vla-jax convert-episodes --src H5_DIR --out /data/mobile_rlds_224 --image-size 224 --action-dim 2
    vla-jax train --config configs/posttrain_mobile_paligemma.py:/data/mobile_rlds_224,/ckpt/paligemma2 \\
        --workdir /runs/mobile_paligemma

ARG = "RLDS_DIR,INIT_FROM[,TOKENIZER_DIR]" (see `vla_jax.train.posttrain`); the architecture and the
image size (224) come from INIT_FROM. Policy-head structure, LSTM head, window 8, chunk 8, 2-D
actions; LoRA rank 32 on the Gemma 2 attention and MLP, SigLIP and the embeddings frozen (full
fine-tuning: --config.lora.enabled=false --config.freeze.freeze_backbone=false
--config.freeze.train_vision=true --config.freeze.train_text_embedding=true). Attention is
PaliGemma's prefix-LM: image + instruction bidirectional, the action token causal.

What to expect. Computed, not measured (python -m bench.backbone_sizes): 3,032,242,416 backbone
parameters, 11.3 GiB of float32 weights (5.7 GiB bf16); full fine-tuning with Adam needs 45 GiB before
activations, so use LoRA, FSDP or a large-memory GPU. Measured: on tiny random weights the same
config trains end to end on CPU (tests/test_backbones_train.py). Not measured: speed or loss on real
episodes (this project's machines have no GPU and no hub access).
"""

from vla_jax.models.paligemma import PaliGemmaConfig
from vla_jax.train.posttrain import mobile_posttrain_config


def get_config(arg: str = "/data/mobile_rlds_224,/ckpt/paligemma2"):
    return mobile_posttrain_config(arg, PaliGemmaConfig.full())
