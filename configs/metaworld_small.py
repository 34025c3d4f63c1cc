"""A small Kosmos-2 policy-head VLA trained from scratch on Meta-World MT10 demonstrations, on a CPU.

    vla-jax sim-collect --env metaworld --tasks mt10 --episodes-per-task 18 --image-size 64 --out DIR/rlds
    python -c "from data_pipelines.tokenize import train_tokenizer; from vla_jax.sim.metaworld.tasks import \\
        INSTRUCTIONS; train_tokenizer(list(INSTRUCTIONS.values()), 'DIR/tokenizer', vocab_size=512)"
    vla-jax train --config configs/metaworld_small.py:DIR --workdir DIR/workdir
    vla-jax export --workdir DIR/workdir --out DIR/export
    vla-jax sim-eval --env metaworld --policy DIR/export --tasks mt10 --image-size 64

`ARG` (after the colon) is the folder holding `rlds/` and `tokenizer/`.

Model: vision 2x64 at 64 px (patch 8), text 2x64 (vocab 512), 16 latent queries, LSTM
policy head (1x64), window 2, chunk 4. Actions: the registry's `metaworld` entry, Meta-World's
own [dx, dy, dz, gripper] declared as `ActionSpace(continuous=3, gripper="[-1 open, +1 close]")`;
the policy returns them in that layout and convention.
Data: tf.data over the RLDS (`rlds_mixture`), no augmentation (the camera never moves).

Measured on the 2-core AMD EPYC development machine, shared with five other engineers, when this
config still padded the actions to 7-D eef7 (three constant dims in the loss, the gripper as an
opening); not re-measured since the action space became the declared 4-D one:
- collection: 850 s at load 6-10 (180 episodes, 13,353 frames; 1 failed expert attempt, expert 99.5%);
- training: 249,372 params, 3000 steps of batch 32 in 33 min 18 s wall (compile included) at
  load 7-11, about 2.5 steps/s when the load fell to ~7; loss (Huber, normalised actions) 0.085
  at step 100, 0.033 at step 1000, 0.017 at step 3000; gripper accuracy ~0.95. On that load it
  missed the 30-minute target; on a quiet machine it was not measured;
- closed loop (sim-eval --tasks mt10, 10 episodes per task, export through vla_runtime.Policy,
  1396 s at load 5-10): 54% mean over the 10 tasks (expert: 99.5%); door-open 100,
  drawer-close 100, button-press-topdown 90, window-open 80, window-close 80, drawer-open 70,
  reach 20, push 0, pick-place 0, peg-insert-side 0 (easy group 77.1%, medium 0, hard 0).
"""

import ml_collections

from vla_jax.models.kosmos2 import Kosmos2Config, Kosmos2TextConfig, Kosmos2VisionConfig
from vla_jax.train.defaults import base_config
from vla_jax.train.model import backbone_config_dict

IMAGE_SIZE = 64
WINDOW = 2
CHUNK = 4


def backbone() -> Kosmos2Config:
    return Kosmos2Config(
        vision=Kosmos2VisionConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=IMAGE_SIZE,
            patch_size=8,
        ),
        text=Kosmos2TextConfig(
            vocab_size=512,
            embed_dim=64,
            layers=2,
            ffn_dim=128,
            attention_heads=4,
            max_position_embeddings=128,
            dropout=0.0,
        ),
        latent_query_num=16,
    )


def get_config(arg: str = "metaworld_out"):
    config = base_config()
    config.seed = 0
    config.num_steps = 3000
    config.batch_size = 32
    config.log_every = 100

    config.model = ml_collections.ConfigDict(
        dict(
            backbone=backbone_config_dict(backbone()),
            structure="policy_head",
            head="lstm",
            window_size=WINDOW,
            action_chunk=CHUNK,
            action_dim=4,
            has_gripper=True,
            head_hidden_size=64,
            head_layers=1,
        )
    )
    config.data.source = "loader"
    config.data.tokenizer = f"{arg}/tokenizer"
    config.data.instruction_length = 16
    config.data.config.update(
        dict(  # shapes come from config.model and data.instruction_length
            kind="rlds_mixture",
            data_dir=f"{arg}/rlds",
            mixture="metaworld",
            normalization="bounds",
            augment=False,
            shuffle_buffer=4000,
        )
    )

    config.optimizer.learning_rate = 1e-3
    config.optimizer.warmup_steps = 100
    config.optimizer.schedule = "cosine"
    config.optimizer.end_lr_ratio = 0.05
    config.optimizer.weight_decay = 0.01

    config.checkpoint.every = 1000
    config.checkpoint.keep = 1
    return config
