"""`vla-jax train` end to end in subprocesses: exact resume after SIGTERM, and 2 hosts == 1 host.

All runs share one XLA compilation cache (the programs are identical), which keeps the
file inside the CI time budget on a 2-core machine.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vla_jax.train.step import fast_compile_xla_flags

REPO = Path(__file__).resolve().parents[1]
STEPS = 6
OVERRIDES = [
    f"--config.num_steps={STEPS}",
    "--config.log_every=1",
    "--config.checkpoint.every=2",
    "--config.optimizer.warmup_steps=2",
    "--config.xla_fast_compile=true",
    # one scanned layer per tower: the same program structure, a third less compile time
    "--config.model.backbone.vision.num_hidden_layers=1",
    "--config.model.backbone.text.layers=1",
    "--quiet",
]


def _env(cache: Path, devices: int, **extra) -> dict:
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} {fast_compile_xla_flags()}",
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    for key in [k for k in env if k.startswith(("VLA_JAX_", "JAX_COORDINATOR", "JAX_PROCESS", "JAX_NUM_PROC"))]:
        del env[key]
    env.update(extra)
    return env


def _train_cmd(workdir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vla_jax.cli",
        "train",
        "--config",
        "configs/tiny.py",
        "--workdir",
        str(workdir),
        *OVERRIDES,
    ]


def _losses(workdir: Path) -> dict[int, float]:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return {rec["step"]: rec["loss"] for rec in map(json.loads, lines)}


def _params(workdir: Path):
    from vla_jax.train.checkpoint import load_for_inference

    _, params, _ = load_for_inference(workdir)
    import jax

    return jax.tree_util.tree_flatten_with_path(params)[0]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("xla_cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    """One process, one device, 6 uninterrupted steps with the same global batch (8)."""
    workdir = tmp_path_factory.mktemp("ref")
    proc = subprocess.run(
        _train_cmd(workdir), cwd=REPO, env=_env(cache, 1), capture_output=True, text=True, timeout=400
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return workdir


def test_reference_run_writes_the_workdir_layout(reference):
    assert {"config.json", "statistics.json", "metrics.jsonl", "tensorboard", "checkpoints"} <= {
        p.name for p in reference.iterdir()
    }
    assert sorted(int(p.name) for p in (reference / "checkpoints").iterdir() if p.name.isdigit()) == [4, 6]
    losses = _losses(reference)
    assert sorted(losses) == list(range(1, STEPS + 1)) and all(np.isfinite(list(losses.values())))
    config = json.loads((reference / "config.json").read_text())
    assert config["num_steps"] == STEPS and config["model"]["head"] == "lstm"
    assert json.loads((reference / "statistics.json").read_text())["synthetic"]["action"]["mask"] == [True, True]
    assert any((reference / "tensorboard").iterdir())


DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    from vla_jax.train.config import load_config
    from vla_jax.train.loop import train
    config = load_config("configs/tiny.py", sys.argv[2:])
    config.progress_bar = False
    def on_step(step):
        if step == 3:  # pre-emption notice right after step 3
            os.kill(os.getpid(), signal.SIGTERM)
    sys.exit(train(config, sys.argv[1], on_step=on_step))
    """
)


def test_sigterm_after_step_3_then_resume_equals_uninterrupted(reference, cache, tmp_path):
    workdir = tmp_path / "run"
    killed = subprocess.run(
        [sys.executable, "-c", DRIVER, str(workdir), *OVERRIDES[:-1]],
        cwd=REPO,
        env=_env(cache, 1),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert killed.returncode == 128 + signal.SIGTERM, killed.stderr[-4000:]
    assert sorted(_losses(workdir)) == [1, 2, 3]
    assert (workdir / "checkpoints" / "3").is_dir()

    resumed = subprocess.run(
        _train_cmd(workdir), cwd=REPO, env=_env(cache, 1), capture_output=True, text=True, timeout=400
    )
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "resumed from" in resumed.stderr
    assert _losses(workdir) == _losses(reference)  # same data, same rng, same updates: bit-identical
    ref, got = _params(reference), _params(workdir)
    assert [path for path, _ in ref] == [path for path, _ in got]
    for (path, a), (_, b) in zip(ref, got):
        np.testing.assert_array_equal(a, b, err_msg=str(path))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def test_two_processes_match_one_process(reference, cache, tmp_path):
    workdir = tmp_path / "multi"
    port = _free_port()
    procs = [
        subprocess.Popen(
            _train_cmd(workdir),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(
                cache, 4, VLA_JAX_COORDINATOR=f"localhost:{port}", VLA_JAX_PROCESS_ID=str(i), VLA_JAX_NUM_PROCESSES="2"
            ),
        )
        for i in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=400) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]
    assert "2 processes" in outputs[0][1]
    ref, got = _losses(reference), _losses(workdir)
    assert sorted(got) == sorted(ref)
    np.testing.assert_allclose([got[s] for s in sorted(got)], [ref[s] for s in sorted(ref)], rtol=1e-5, atol=1e-6)
    # Parameters agree up to float reduction order, which Adam's m/sqrt(v) amplifies on leaves whose
    # gradients are ~0 (updates of +-lr either way): hence the absolute tolerance of a few lr-sized steps.
    for (path, a), (_, b) in zip(_params(reference), _params(workdir)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4, err_msg=str(path))


def test_posttrain_init_from_workdir_keeps_backbone_and_reinitialises_changed_head(reference):
    """`config.init_from=<pre-training workdir>` with a 3-D head instead of 2-D (no compile needed)."""
    import jax

    from vla_jax.errors import VLAJaxError
    from vla_jax.train.config import load_config
    from vla_jax.train.model import build_model, example_batch, load_pretrained

    config = load_config(
        "configs/tiny.py",
        [
            ("model.action_dim", "3"),
            ("init_from", str(reference)),
            ("model.backbone.vision.num_hidden_layers", "1"),
            ("model.backbone.text.layers", "1"),
        ],
    )
    bundle = build_model(config)
    fresh = jax.eval_shape(lambda r: bundle.module.init(r, example_batch(config))["params"], jax.random.key(1))
    fresh = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), fresh)
    params, note = load_pretrained(config.init_from, fresh, config, bundle)
    source = dict(_params(reference))
    assert "fresh: head/" in note
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if path[0].key == "backbone":
            np.testing.assert_array_equal(leaf, source[path], err_msg=str(path))
    config.init_reinit = ""  # without permission a shape change is an error naming the tensor
    with pytest.raises(VLAJaxError, match="head/.*has shape"):
        load_pretrained(config.init_from, fresh, config, bundle)
