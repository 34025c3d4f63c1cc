"""A small Kosmos-2 policy-head VLA trained from scratch on Meta-World MT10 demonstrations, on a CPU.

    vla-jax sim-collect --env metaworld --tasks mt10 --episodes-per-task 18 --image-size 64 --out DIR/rlds
    vla-jax tokenizer --from-dataset metaworld --data-dir DIR/rlds --out DIR/tokenizer --vocab-size 512
    vla-jax train --config configs/metaworld_small.py:DIR --workdir DIR/workdir
    vla-jax export --workdir DIR/workdir --out DIR/export
    vla-jax sim-eval --env metaworld --policy DIR/export --tasks mt10 --image-size 64

`ARG` (after the colon) is the folder holding `rlds/` and `tokenizer/`.

Model: vision 2x64 at 64 px (patch 8), text 2x64 (vocab 512), 16 latent queries, LSTM
policy head (1x64), window 2, chunk 4. Actions: the registry's `metaworld` entry, Meta-World's
own [dx, dy, dz, gripper] declared as `ActionSpace(continuous=3, gripper="[-1 open, +1 close]")`;
the policy returns them in that layout and convention.
Data: tf.data over the RLDS (`rlds_mixture`), no augmentation (the camera never moves).

Measured on the 2-core AMD EPYC development machine (no GPU), 2026-12-01, this config as it is (the
declared 4-D action space), the five commands above in order (load = 1-min load average):
- collection: 818 s at load 0.7-10.5 (180 episodes, 13,353 frames; 1 failed expert attempt on
  door-open, counted and not written; expert 99.5%);
- tokenizer: 40 s (359 tokens used of 512);
- training: 248,592 params, 3000 steps of batch 32: 659 s (11 min) wall, compile included, at load
  1.4-3.3; the same run at load 9.8-14.5 (five engineers on the machine) took 2362 s (39 min). Loss
  (Huber on bounds-normalised actions + 0.01 x gripper BCE) 0.114 at step 100, 0.051 at step 1000,
  0.032 at step 3000, identical in both runs; gripper accuracy 1.0 at step 3000;
- export: 29 s, no warnings;
- closed loop (sim-eval --tasks mt10, 10 episodes per task on seeds disjoint from collection,
  500-step limit, the export through vla_runtime.Policy): 2219 s at load 14.7 falling to 2.3;
  47% mean over the 10 tasks (expert: 99.5%): door-open 100, drawer-close 100,
  button-press-topdown 100, window-close 80, drawer-open 60, window-open 30, reach 0, push 0,
  pick-place 0, peg-insert-side 0 (easy group 67.1%, medium 0, hard 0). One training seed.
Before the action space was declared (7-D eef7 padding, three constant dims in the loss) the same
recipe gave 54% (reach 20, drawer-open 70, window-open 80, button 90; the rest as above): one seed each,
so the two cannot be told apart (seed-to-seed spread was not measured).
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
