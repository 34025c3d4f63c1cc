"""Post-train the Kosmos-2 policy on the users' mobile-robot episodes (2-D velocity actions).

    vla-jax convert-episodes --src H5_DIR --out /data/mobile_rlds --image-size 224 --action-dim 2
    vla-jax train --config configs/posttrain_mobile_kosmos2.py:/data/mobile_rlds,/runs/oxe_kosmos2 \\
        --workdir /runs/mobile1

ARG = "RLDS_DIR,INIT_FROM[,TOKENIZER_DIR]": the converted episodes, and where the weights come from:
a pre-training workdir (new optimizer, new statistics, the 7-D head re-initialised for 2-D)
or `vla-jax convert-hf` output (backbone only). TOKENIZER_DIR defaults to INIT_FROM when it
is convert-hf output; for a workdir pass the convert-hf folder the pre-training used.

Default: LoRA (rank 32) on the text decoder's attention and MLP, vision tower and
embeddings frozen, head trained: fits a 24 GB GPU with batch 16. Full fine-tuning:
--config.lora.enabled=false --config.freeze.freeze_backbone=false (needs ~40 GB+ or fsdp).
Expect on one A100/H100-class GPU: ~4-6 steps/s; on 250 episodes the loss falls below
~0.05 by step 3000; offline MAE (vla-jax eval-offline) well under 0.2 in robot units.
"""

from vla_jax.models.kosmos2 import Kosmos2Config
from vla_jax.train.posttrain import mobile_posttrain_config


def get_config(arg: str = "/data/mobile_rlds,/runs/oxe_kosmos2"):
    return mobile_posttrain_config(arg, Kosmos2Config.full())
