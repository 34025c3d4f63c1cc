"""`vla-jax train --config configs/NAME.py --workdir DIR [--config.key=value ...]`.

An existing workdir is resumed from its latest checkpoint (config, data
iterator and all); ``--config.num_steps=N`` extends or shortens the run.
"""

from __future__ import annotations

import argparse
import logging
import os

from vla_jax.train.config import load_config
from vla_jax.train.loop import train

# `--config.a.b=v` cannot be declared up front: the dispatcher hands them over as args.extra_args.
ACCEPTS_EXTRA_ARGS = True

EPILOG = """\
overrides:
  --config.KEY=VALUE      set any field of the config file, e.g. --config.num_steps=200
                          --config.optimizer.learning_rate=3e-4 --config.mesh.fsdp=4
                          --config.lora.enabled=true --config.init_from=/path/to/workdir
examples:
  vla-jax train --config configs/tiny.py --workdir /tmp/w          # minutes on a CPU (configs/tiny.py)
  vla-jax train --config configs/tiny.py --workdir /tmp/w --config.num_steps=400   # resume + extend
own datasets: --registry my_registry.toml --config.data.config.mixture=mine (data_pipelines/registry.py);
pass the same --registry again when resuming (the workdir records the mixture name, not the file)
multi-host: set VLA_JAX_COORDINATOR=host:port VLA_JAX_PROCESS_ID=i VLA_JAX_NUM_PROCESSES=n
(Cloud TPU pods and SLURM are detected automatically); see launch/README.md.
"""

# The dispatcher adds `--registry FILE` (datasets of your own, by name in the config) and loads it before `run`.
USES_DATASET_REGISTRY = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "--config", required=True, metavar="FILE[:ARG]", help="config file defining get_config() (configs/tiny.py, ...)"
    )
    parser.add_argument(
        "--workdir", required=True, help="run folder: config, statistics, checkpoints, logs; an existing one is resumed"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("vla_jax").setLevel(logging.INFO)  # ours informative; absl/orbax chatter stays quiet
    config = load_config(args.config, args.extra_args)  # unknown keys and bad values fail before anything runs
    if args.quiet:
        config.progress_bar = False
    return train(config, args.workdir)
