"""What the benchmark smoke tests share: the checkout's root, the environment a benchmark subprocess runs in, and
the test that a measured number is one (finite, positive, not a bool)."""

from __future__ import annotations

import math
import os
from pathlib import Path

from vla_jax.train.step import fast_compile_xla_flags

ROOT = Path(__file__).resolve().parent.parent


def pos(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def bench_env(**extra: str) -> dict:
    """The environment a benchmark subprocess runs in: CPU JAX, quiet TensorFlow, the checkout importable,
    fast XLA compiles (`extra` overrides or adds)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    return {**env, "XLA_FLAGS": fast_compile_xla_flags(), **extra}
