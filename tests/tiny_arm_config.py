"""A tiny 4-D arm+gripper policy ([dx, dy, dz, gripper]) on the registry's `metaworld` dataset, for end-to-end tests.

    vla-jax train --config tests/tiny_arm_config.py:DIR --workdir DIR/workdir

DIR holds rlds/metaworld/1.0.0 (sim-collect --env metaworld, or a converted LeRobot
dataset named metaworld) and tokenizer/. 32 px frames, one layer per tower, 4 steps.
"""

import dataclasses

import ml_collections

from vla_jax.models.kosmos2 import Kosmos2Config
from vla_jax.train.defaults import base_config
from vla_jax.train.model import backbone_config_dict

SIZE = 32


def get_config(arg):
    config = base_config()
    config.num_steps, config.batch_size, config.log_every = 4, 4, 1
    config.xla_fast_compile = True
    tiny = Kosmos2Config.tiny()
    backbone = dataclasses.replace(
        tiny,
        text=dataclasses.replace(tiny.text, vocab_size=300, layers=1, max_position_embeddings=64),
        vision=dataclasses.replace(tiny.vision, num_hidden_layers=1, image_size=SIZE),
    )
    config.model = ml_collections.ConfigDict(
        dict(
            backbone=backbone_config_dict(backbone),
            structure="policy_head",
            head="lstm",
            window_size=2,
            action_chunk=2,
            action_dim=4,
            has_gripper=True,
            head_hidden_size=16,
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
            shuffle_buffer=64,
            stats_cache_dir=f"{arg}/stats",
        )
    )
    config.optimizer.warmup_steps = 1
    config.checkpoint.every, config.checkpoint.keep = 4, 1
    return config


def train(folder, timeout: int = 600, extra_args=()):
    """Train the tiny config on `folder` in a subprocess (fast XLA compile); returns the workdir.

    `extra_args` go to `vla-jax train` (e.g. `--registry FILE --config.data.config.mixture=NAME`).

    The runs of the Meta-World and LeRobot tests compile the same program, so they share a
    persistent XLA cache (keyed by the program's hash: a stale entry is never reused).
    """
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from data_pipelines.tokenize import train_tokenizer
    from vla_jax.sim.metaworld.tasks import INSTRUCTIONS
    from vla_jax.train.step import fast_compile_xla_flags

    folder = Path(folder)
    train_tokenizer(list(INSTRUCTIONS.values()), str(folder / "tokenizer"), vocab_size=300)
    cache = Path(tempfile.gettempdir()) / f"vla_jax_tests_xla_cache_{os.getuid()}"
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="3",
        XLA_FLAGS=fast_compile_xla_flags(),  # one device, as a user trains
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    )
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vla_jax.cli",
            "train",
            "--config",
            f"{__file__}:{folder}",
            "--workdir",
            str(folder / "workdir"),
            "--quiet",
            *extra_args,
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return folder / "workdir"
