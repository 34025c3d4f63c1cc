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

from vla_jax.train.step import FAST_COMPILE_OPTIONS, fast_compile_xla_flags  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def xla_flags(devices: int) -> str:
    """XLA_FLAGS for a subprocess: `devices` fake CPU devices and the fast-compile options."""
    return f"--xla_force_host_platform_device_count={devices} {fast_compile_xla_flags()}"


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


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory):
    """(folder, train config, random params) of a tiny policy-head LSTM VLA at 32 px with its own tokenizer in
    folder/tok: window 2, chunk 2, 2-D actions, instruction_length 16 (what the export / evaluation tests drive)."""
    import dataclasses

    import ml_collections

    from data_pipelines.mobile_episodes import DEFAULT_INSTRUCTION
    from data_pipelines.tokenize import train_tokenizer
    from vla_jax.models.kosmos2 import Kosmos2Config
    from vla_jax.train.model import backbone_config_dict, vla_config
    from vla_jax.vla import init_policy

    root = tmp_path_factory.mktemp("tiny_policy")
    train_tokenizer([DEFAULT_INSTRUCTION.format(side=s) for s in ("left", "right")] * 2, str(root / "tok"), 300)
    tiny = Kosmos2Config.tiny()
    text = dataclasses.replace(tiny.text, vocab_size=300, layers=1, max_position_embeddings=64)
    model = {
        "backbone": backbone_config_dict(dataclasses.replace(tiny, text=text)),
        "structure": "policy_head",
        "head": "lstm",
        "window_size": 2,
        "action_chunk": 2,
        "action_dim": 2,
        "has_gripper": False,
        "head_hidden_size": 16,
        "head_layers": 1,
    }
    data = {"tokenizer": str(root / "tok"), "instruction_length": 16, "config": {"resize_mode": "resize"}}
    config = ml_collections.ConfigDict({"model": model, "data": data})
    return root, config, init_policy(vla_config(config), 0, instruction_length=16)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory):
    """A small BPE tokenizer over navigation and manipulation instructions (export and runtime tests)."""
    from data_pipelines.tokenize import train_tokenizer

    out = tmp_path_factory.mktemp("tok")
    train_tokenizer(
        ["Navigate around the obstacle on the left side and reach the target", "go right", "pick up the block"],
        str(out),
        vocab_size=300,
    )
    return str(out)
