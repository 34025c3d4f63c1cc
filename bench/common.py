"""Shared helpers for the benchmarks: CLI flags, timing, machine description, JSON + table output,
and the trainer-built jitted train step every benchmark times.

Every benchmark is ``python -m bench.NAME [--quick] [--out bench/results/NAME.json]``: it prints a
table and writes a JSON whose ``machine`` block names the device, the CPU model, the load average
and the date, because an absolute number without its machine is meaningless (and this 2-core host
is shared, so the load average is part of the result).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ------------------------------------------------------------------------------------------------ CLI
def parser(name: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=description)
    p.add_argument("--quick", action="store_true", help="toy sizes (seconds): what the smoke test runs")
    p.add_argument("--out", default=str(RESULTS_DIR / f"{name}.json"), help="where to write the JSON result")
    return p


# ------------------------------------------------------------------------------------------------ machine
VECTOR_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")  # what XLA:CPU's and oneDNN's kernels pick from


def cpu_identity(lscpu: str) -> dict:
    """lscpu's output -> the CPU's model name, family / model / stepping and vector extensions.

    Why more than the name: lscpu's model name can be just "AMD EPYC" on a cloud VM, and the same benchmark gave
    ours 1.5-1.8x torch on one such machine and 0.9x on another (RESULTS.md 1d, 1e), so a result must say which
    CPU generation it ran on."""
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lscpu.splitlines()) if v}
    flags = set(fields.get("Flags", "").split())
    return {
        "cpu_model": fields.get("Model name") or platform.processor() or "unknown",
        "cpu_family_model_stepping": [fields.get(k) for k in ("CPU family", "Model", "Stepping")],
        "cpu_vector_flags": [f for f in VECTOR_FLAGS if f in flags],
    }


def _lscpu() -> str:
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def machine_info(extra: dict | None = None) -> dict:
    """Device, CPU model, cores, load average, date and library versions (the context of every number)."""
    info = {
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        **cpu_identity(_lscpu()),
        "cpu_cores": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        # glibc's malloc tunables (huge pages: vla_jax/hugepages.py) change XLA:CPU's step time (RESULTS.md 1d).
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
    }
    for mod in ("jax", "flax", "optax", "torch", "transformers", "tensorflow", "grain"):
        try:
            info[f"{mod}_version"] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing optional library is simply not reported
            pass
    try:
        import jax

        info["jax_device"] = str(jax.devices()[0].device_kind)
    except Exception:  # noqa: BLE001
        pass
    info.update(extra or {})
    return info


# ------------------------------------------------------------------------------------------------ timing
def time_calls(
    fn: Callable[[], Any], *, warmup: int, iters: int, sync: Callable[[Any], Any] = lambda x: x
) -> list[float]:
    """Wall seconds of ``iters`` calls after ``warmup`` excluded ones; ``sync`` blocks on the result."""
    for _ in range(warmup):
        sync(fn())
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - t0)
    return times


def summary(times: Sequence[float]) -> dict:
    """Median and spread (p10/p90) of a list of seconds; the median is what every ratio uses."""
    s = sorted(times)

    def q(p):
        return s[min(len(s) - 1, max(0, int(round(p * (len(s) - 1)))))]

    return {"median_s": statistics.median(s), "p10_s": q(0.1), "p90_s": q(0.9), "n": len(s)}


def jax_sync(x):
    import jax

    return jax.block_until_ready(x)


# ------------------------------------------------------------------------------------------------ output
def write_result(path: str | os.PathLike, result: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False, default=float) + "\n")
    print(f"wrote {path}")
    return path


def print_table(title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(header)]
    lines = [title, "  ".join(str(h).ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    text = "\n".join(lines)
    print(text)
    return text


def _fmt(v) -> str:
    if isinstance(v, float):
        if v == 0 or 1e-3 <= abs(v) < 1e6:
            return f"{v:.4g}"
        return f"{v:.3e}"
    return str(v)


# ------------------------------------------------------------------------------------------------ train step
def train_config(
    model: dict,
    *,
    batch_size: int,
    instruction_length: int,
    lr: float = 1e-4,
    weight_decay: float = 0.01,
    grad_clip: float = 1.0,
):
    """A trainer config (vla_jax.train.defaults) with a constant LR, so steps are comparable across frameworks."""
    import ml_collections

    from vla_jax.train.defaults import base_config

    config = base_config()
    config.batch_size = batch_size
    config.num_steps = 1000
    config.model = ml_collections.ConfigDict(model)
    config.data.instruction_length = instruction_length
    config.optimizer.learning_rate = lr
    config.optimizer.warmup_steps = 0
    config.optimizer.schedule = "constant"
    config.optimizer.weight_decay = weight_decay
    config.optimizer.grad_clip = grad_clip
    return config


class JaxTrainStep:
    """The trainer's own jitted step (vla_jax.train.step) on a one-device mesh, built from a train config.

    ``params`` (optional) replaces the fresh init, e.g. weights converted from a torch model so both
    frameworks start from the same point.
    """

    def __init__(self, config, params=None, seed: int = 0):
        import jax
        import numpy as np

        from vla_jax.train import sharding
        from vla_jax.train.model import build_model, example_batch
        from vla_jax.train.optimizer import make_optimizer, trainable_mask
        from vla_jax.train.state import TrainState
        from vla_jax.train.step import FAST_COMPILE_OPTIONS, jit_step, make_step_fn

        self.config = config
        self.mesh = sharding.make_mesh(1, 1, devices=jax.devices()[:1])
        bundle = build_model(config)
        self.module = bundle.module
        init_batch = example_batch(config)
        rng = jax.random.key_data(jax.random.key(seed))
        if params is None:
            params = jax.jit(lambda r: bundle.module.init({"params": r, "dropout": r}, init_batch)["params"])(rng)
        self.num_params = int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
        mask = trainable_mask(params, config.freeze)
        optimizer, schedule = make_optimizer(config, params, mask)
        state = TrainState.create(params, optimizer, rng)
        abstract = jax.eval_shape(lambda s: s, state)
        shardings = sharding.tree_shardings(abstract, self.mesh, config.mesh.min_shard_size)
        self.state = jax.device_put(state, shardings)
        options = FAST_COMPILE_OPTIONS if config.get("xla_fast_compile", False) else None
        self.step_fn = jit_step(
            make_step_fn(bundle.module.apply, bundle.loss_fn, optimizer, schedule, mask),
            shardings,
            list(init_batch),
            self.mesh,
            compiler_options=options,
        )

    def place(self, batch: dict) -> dict:
        from data_pipelines.device import to_global_batch  # the trainer's own host -> device path

        return to_global_batch(batch, self.mesh)

    def compile_seconds(self, batch: dict) -> float:
        """Lower + compile once (timed); later calls run this executable, so nothing compiles twice."""
        t0 = time.perf_counter()
        self.step_fn = self.step_fn.lower(self.state, batch).compile()
        return time.perf_counter() - t0

    def __call__(self, batch: dict) -> dict:
        self.state, metrics = self.step_fn(self.state, batch)
        return metrics


def random_batch(config, *, seed: int = 0, image_size: int | None = None) -> dict:
    """A full (no padding) random batch with the docs/design.md keys for a train config; numpy."""
    import numpy as np

    m = config.model
    b, t, c, a = config.batch_size, m.window_size, m.action_chunk, m.action_dim
    s = image_size or m.backbone.vision.image_size
    n = config.data.instruction_length
    rng = np.random.default_rng(seed)
    action = rng.uniform(-1, 1, (b, t, c, a)).astype(np.float32)
    if m.has_gripper:
        action[..., -1] = rng.integers(0, 2, (b, t, c))
    tokens = rng.integers(3, m.backbone.text.vocab_size, (b, n)).astype(np.int32)
    tokens[:, 0] = 0  # BOS, as a tokenizer would put it
    return {
        "image": rng.integers(0, 256, (b, t, s, s, 3), dtype=np.uint8),
        "image_mask": np.ones((b, t), bool),
        "tokens": tokens,
        "token_mask": np.ones((b, n), bool),
        "action": action,
        "action_mask": np.ones((b, t, c), bool),
        "action_dim_mask": np.ones((b, a), bool),
        "dataset_id": np.zeros((b,), np.int32),
    }


def load_config_file(path: str, arg: str | None = None):
    """`configs/NAME.py[:ARG]` -> its get_config(ARG) (the same loader convention as `vla-jax train`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(Path(path).stem + "_bench_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg is not None else module.get_config()


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def quick_train_config():
    """The one toy config every ``--quick`` run trains: configs/tiny.py's model and batch, dropout off,
    constant LR. Sharing it means the smoke test's runs compile the same XLA program, so JAX's
    persistent compilation cache compiles it once for all of them."""
    config = load_config_file(str(repo_root() / "configs" / "tiny.py"))
    config.model.backbone.text.dropout = 0.0
    config.optimizer.schedule = "constant"
    config.optimizer.warmup_steps = 0
    return config


def vla_config_of(config):
    from vla_jax.train.model import vla_config

    return vla_config(config)
