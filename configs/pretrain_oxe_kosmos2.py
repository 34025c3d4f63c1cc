"""Pre-train the full-size Kosmos-2 policy-head VLA (RoboVLMs' best structure) on the OXE magic soup.

    vla-jax convert-hf --src PATH/TO/microsoft/kosmos-2-patch14-224 --out /mnt/ckpt/kosmos2
    vla-jax train --config configs/pretrain_oxe_kosmos2.py:gs://BUCKET/oxe,/mnt/ckpt/kosmos2 \\
        --workdir /mnt/runs/oxe_kosmos2          # on every host of the pod: see launch/README.md

ARG = "DATA_DIR,CONVERTED_DIR": the tfds folder holding the OXE datasets, and the
`vla-jax convert-hf` output (backbone weights + tokenizer). Sized for a v4-32
(16 chips, 4 hosts, mesh data=4 x fsdp=4, global batch 256). Step time, compile time
and the loss curve on a pod have not been measured; `bench/pod_sizing.py` computes what
an assumed 40% MFU would give (bench/RESULTS.md section 7). The loss is Huber on
normalised actions + 0.01 x gripper BCE. Checkpoints every 5000 steps; pre-emption
saves and `launch/tpu.py run` again resumes.

Model: Kosmos-2 (ViT-L/14 at 224 px, 24-layer 2048-wide decoder), bf16 compute with
float32 master weights, remat; LSTM policy head 4x1024, window 16, chunk 10,
7-D end-effector delta + gripper.
"""

import ml_collections

from vla_jax.models.kosmos2 import Kosmos2Config
from vla_jax.train.defaults import base_config
from vla_jax.train.model import backbone_config_dict

WINDOW, CHUNK, TEXT = 16, 10, 32


def get_config(arg: str = "gs://BUCKET/oxe,/mnt/ckpt/kosmos2"):
    data_dir, _, converted = arg.partition(",")
    config = base_config()
    config.seed = 0
    config.num_steps = 200_000
    config.batch_size = 256
    config.log_every = 50
    config.init_from = converted  # convert-hf output: backbone weights; head starts fresh

    config.model = ml_collections.ConfigDict(
        dict(
            backbone=backbone_config_dict(Kosmos2Config.full(dtype="bfloat16", remat=True)),
            structure="policy_head",
            head="lstm",
            window_size=WINDOW,
            action_chunk=CHUNK,
            action_dim=7,
            has_gripper=True,
            head_hidden_size=1024,
            head_layers=4,
        )
    )
    config.data.source = "loader"
    config.data.tokenizer = converted
    config.data.instruction_length = TEXT
    config.data.config.update(
        dict(  # shapes come from config.model and data.instruction_length
            kind="rlds_mixture",
            data_dir=data_dir,
            mixture="oxe_magic_soup",
            normalization="bounds_q99",
            augment=True,
            shuffle_buffer=100_000,
            ram_budget_gb=64,
        )
    )

    config.mesh.data = -1
    config.mesh.fsdp = 4  # 1.6B params + Adam: ~26 GB f32, split over 4 chips of each data-parallel group

    config.optimizer.learning_rate = 1e-4
    config.optimizer.warmup_steps = 2000
    config.optimizer.schedule = "cosine"
    config.optimizer.end_lr_ratio = 0.1
    config.optimizer.weight_decay = 0.01
    config.optimizer.grad_clip = 1.0

    config.freeze.freeze_backbone = False
    config.freeze.train_vision = True
    config.freeze.train_text_embedding = True

    config.checkpoint.every = 5000
    config.checkpoint.keep = 3
    return config
