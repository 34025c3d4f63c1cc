"""Post-train the CLIP + Kosmos-2 hybrid (a CLIPVisionModel tower feeding Kosmos-2's projection and LM).

    vla-jax convert-hf --src PATH/TO/microsoft/kosmos-2-patch14-224 --vision-src PATH/TO/openai/clip-vit-base-patch16 \\
        --out /ckpt/clip_kosmos2
    vla-jax verify-hf  --src PATH/TO/microsoft/kosmos-2-patch14-224 --vision-src PATH/TO/openai/clip-vit-base-patch16
    vla-jax convert-episodes --src H5_DIR --out /data/mobile_rlds_224 --image-size 224 --action-dim 2
    vla-jax train --config configs/posttrain_mobile_clip_kosmos2.py:/data/mobile_rlds_224,/ckpt/clip_kosmos2 \\
        --workdir /runs/mobile_clip_kosmos2

ARG = "RLDS_DIR,INIT_FROM[,TOKENIZER_DIR]" (see `vla_jax.train.posttrain`); the architecture (any CLIP
ViT size) and the image size (the CLIP tower's) come from INIT_FROM. When the CLIP width differs from
Kosmos-2's 1024, the projection's input layer is new and must train, so the default is full
fine-tuning; LoRA would freeze it (add it with --config.freeze.backbone_pattern if you use LoRA).
Policy-head structure, LSTM head, window 8, chunk 8, 2-D actions.

What to expect. Computed, not measured (python -m bench.backbone_sizes): 1,446,580,736 backbone
parameters with CLIP ViT-B/16; 5.4 GiB float32 weights (2.7 GiB bf16); full fine-tuning with Adam
21.6 GiB before activations (use remat, the default here, and FSDP on small GPUs). Measured: on tiny
random weights the hybrid converts from a CLIPVisionModel + a Kosmos-2 folder and this config trains
end to end on CPU (tests/test_backbones_train.py). Not measured: speed or loss on real episodes.
"""

from vla_jax.models.clip_kosmos2 import ClipKosmos2Config
from vla_jax.train.posttrain import mobile_posttrain_config


def get_config(arg: str = "/data/mobile_rlds_224,/ckpt/clip_kosmos2"):
    return mobile_posttrain_config(arg, ClipKosmos2Config.full(), lora=False, learning_rate=5e-5)
