"""Post-train the Kosmos-2 policy on the users' mobile-robot episodes (2-D velocity actions).

    vla-jax convert-episodes --src H5_DIR --out /data/mobile_rlds --image-size 224 --action-dim 2
    vla-jax train --config configs/posttrain_mobile_kosmos2.py:/data/mobile_rlds,/runs/oxe_kosmos2 \\
        --workdir /runs/mobile1

ARG = "RLDS_DIR,INIT_FROM[,TOKENIZER_DIR]": the converted episodes, and where the weights come from:
a pre-training workdir (new optimizer, new statistics, the 7-D head re-initialised for 2-D)
or `vla-jax convert-hf` output (backbone only). TOKENIZER_DIR defaults to INIT_FROM when it
is convert-hf output; for a workdir pass the convert-hf folder the pre-training used.

Default: LoRA (rank 32) on the text decoder's attention and MLP, vision tower and
embeddings frozen, head trained. Full fine-tuning:
--config.lora.enabled=false --config.freeze.freeze_backbone=false.

What to expect. Computed, not measured (python -m bench.backbone_sizes): 1,664,485,376 backbone
parameters; 6.2 GiB float32 weights (3.1 GiB bf16); full fine-tuning with Adam 24.8 GiB before
activations (use FSDP or remat on small GPUs). Train-step FLOPs per frame per structure:
bench/RESULTS.md section 9 (`python -m bench.scaling`). Not measured: speed or loss on real
episodes on a GPU (this project's machines have none; `python -m bench.gpu_all` is the prepared
measurement).
"""

from vla_jax.models.kosmos2 import Kosmos2Config
from vla_jax.train.posttrain import mobile_posttrain_config


def get_config(arg: str = "/data/mobile_rlds,/runs/oxe_kosmos2"):
    return mobile_posttrain_config(arg, Kosmos2Config.full())
