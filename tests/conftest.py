"""Shared test set-up: CPU only, 8 fake devices in every test process, fast-compile settings.

The device count must be fixed before JAX creates its CPU backend, which is why it is set here,
at import time (pytest imports conftest.py before any test module). Tests that need one device
take `jax.devices()[:1]`; sharding tests get the 8-device mesh in-process instead of a script
in a subprocess. A subprocess stays only where it is the point of the test (signals, a second
host, a clean interpreter); `subprocess_env` gives it the same settings.
"""

import os
from pathlib import Path

DEVICES = 8
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["XLA_FLAGS"] = " ".join(
    [f for f in os.environ.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    + [f"--xla_force_host_platform_device_count={DEVICES}"]
)

import pytest  # noqa: E402  (after the environment: JAX reads it when it creates its backend)

from vla_jax.train.step import FAST_COMPILE_OPTIONS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def xla_flags(devices: int, fast_compile: bool = True) -> str:
    """XLA_FLAGS for a subprocess: `devices` fake CPU devices and, by default, the fast-compile options."""
    flags = [f"--xla_force_host_platform_device_count={devices}"]
    if fast_compile:
        flags += [f"--{k}={str(v).lower()}" for k, v in FAST_COMPILE_OPTIONS.items()]
    return " ".join(flags)


@pytest.fixture(scope="session")
def fast_compile() -> dict:
    """`compiler_options` for jax.jit of tiny test models: XLA's cheap optimisation level (several times faster
    to compile; tests compare programs with each other, not with optimised kernels)."""
    return dict(FAST_COMPILE_OPTIONS)


@pytest.fixture
def subprocess_env():
    """env(devices=1, **extra) -> os.environ for a child process on CPU with the fast-compile flags."""

    def make(devices: int = 1, **extra: str) -> dict:
        return {
            **os.environ,
            "JAX_PLATFORMS": "cpu",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "XLA_FLAGS": xla_flags(devices),
            **extra,
        }

    return make
