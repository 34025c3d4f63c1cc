"""Post-train a SmolVLM2 policy (SigLIP + pixel shuffle + SmolLM2; SmolVLA's backbone) on the mobile episodes.

    vla-jax convert-hf --src PATH/TO/HuggingFaceTB/SmolVLM2-256M-Video-Instruct --out /ckpt/smolvlm256
    vla-jax verify-hf  --src PATH/TO/HuggingFaceTB/SmolVLM2-256M-Video-Instruct
    vla-jax convert-episodes --src H5_DIR --out /data/mobile_rlds_512 --image-size 512 --action-dim 2
    vla-jax train --config configs/posttrain_mobile_smolvlm.py:/data/mobile_rlds_512,/ckpt/smolvlm256 \\
        --workdir /runs/mobile_smolvlm

ARG = "RLDS_DIR,INIT_FROM[,TOKENIZER_DIR]" (see `vla_jax.train.posttrain`); the architecture and the
image size (512: one un-split frame = 64 image tokens) come from INIT_FROM, so the same file trains
the 500M model. Policy-head structure, LSTM head, window 8, chunk 8, 2-D actions. The model is small,
so the default is full fine-tuning (every weight trains); LoRA: --config.lora.enabled=true
--config.freeze.freeze_backbone=true.

What to expect. Computed, not measured (python -m bench.backbone_sizes): 256,484,928 backbone
parameters for 256M (507,482,304 for 500M); 0.96 GiB float32 weights, 0.48 GiB in bf16 (the size a
16 GB robot board holds with room to spare); full fine-tuning with Adam 3.8 GiB (7.6 GiB for 500M)
before activations. Measured: on tiny random weights the same config trains end to end on CPU
(tests/test_backbones_train.py). Not measured: speed or loss on real episodes (no GPU, no hub here).
"""

from vla_jax.models.smolvlm import SmolVLMConfig
from vla_jax.train.posttrain import mobile_posttrain_config


def get_config(arg: str = "/data/mobile_rlds_512,/ckpt/smolvlm256"):
    return mobile_posttrain_config(arg, SmolVLMConfig.full("256M"), lora=False, learning_rate=5e-5)
