"""Meta-World MT50 at full size, for a GPU/TPU: PaliGemma 2 3B (pi0's VLM family) fully fine-tuned on 50 demos per task.

    vla-jax convert-hf --src PATH/TO/google/paligemma2-3b-pt-224 --out /ckpt/paligemma2
    vla-jax sim-collect --env metaworld --tasks mt50 --episodes-per-task 50 --image-size 224 --out /data/mt50_224
    vla-jax train --config configs/metaworld_mt50.py:/data/mt50_224,/ckpt/paligemma2 --workdir /runs/mt50_paligemma
    vla-jax export --workdir /runs/mt50_paligemma --out /runs/mt50_paligemma/export --dtype bfloat16
    vla-jax sim-eval --env metaworld --policy /runs/mt50_paligemma/export --tasks mt50 --image-size 224 --device cuda

ARG = "RLDS_DIR,INIT_FROM[,TOKENIZER_DIR]" as in `vla_jax.train.posttrain` (the architecture, the image size
and, by default, the tokenizer come from INIT_FROM). 50 scripted demonstrations per task, as LeRobot's
published MT50 set (2,500 episodes), written by `sim-collect` at 224 px from the corner2 camera.

Model: PaliGemma 2 3B, policy-head structure, LSTM head (4 x 1024), window 4, chunk 8; Meta-World's own
[dx, dy, dz, gripper] (the registry's `metaworld` entry: `ActionSpace(continuous=3, gripper="[-1 open,
+1 close]")`), returned by the runtime in that layout and convention. Full fine-tuning in bfloat16 with
remat (Meta-World's views are far from PaliGemma's pre-training images; pi0 and SmolVLA fine-tune the whole
model too). No augmentation: the camera never moves, and a mirrored scene is not the same task.

What to expect. Computed, not measured (python -m bench.backbone_sizes): 3,032,242,416 backbone parameters;
Adam's float32 params + grads + two moments are 45 GiB before activations: one 80 GiB+ GPU, or FSDP over a
TPU slice (--config.mesh). Not measured: speed, memory or success. No GPU or TPU was lent to this project's
sessions and there is no hub access here, so this config has only been loaded, never trained. The CPU
recipe that was measured end to end is configs/metaworld_small.py.
"""

from vla_jax.models.paligemma import PaliGemmaConfig
from vla_jax.train.posttrain import mobile_posttrain_config


def get_config(arg: str = "/data/mt50_224,/ckpt/paligemma2"):
    config = mobile_posttrain_config(
        arg,
        PaliGemmaConfig.full(),
        window_size=4,
        action_chunk=8,
        instruction_length=24,
        batch_size=64,
        num_steps=30_000,
        learning_rate=5e-5,
        lora=False,
    )
    config.model.action_dim = 4
    config.model.has_gripper = True
    data_dir = config.data.config.data_dir
    config.data.config.update(
        dict(
            kind="rlds_mixture",
            data_dir=data_dir,
            mixture="metaworld",
            augment=False,
            mirror_augment=False,
            shuffle_buffer=50_000,
        )
    )
    config.checkpoint.every = 2000
    return config
