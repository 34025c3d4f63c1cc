"""The training loop: one code path for a laptop CPU, 8 fake devices and a TPU pod.

Order matters: `jax.distributed` first (before anything touches devices), then
the mesh, the host's share of the data, the state (restored from the workdir's
latest checkpoint if there is one, else initialised directly into its
shardings and optionally overlaid with ``config.init_from`` weights), then the
jitted step. Pre-emption (SIGTERM) and Ctrl-C (SIGINT) set a flag; the loop
finishes the current step, saves a checkpoint with the data iterator position,
waits for it, and exits 143 / 130. Rerunning the same command resumes exactly.
Workdir layout: see `vla_jax.train.checkpoint`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from tensorboardX import SummaryWriter
from tqdm import tqdm

from data_pipelines.device import to_global_batch
from data_pipelines.loader import make_loader
from data_pipelines.synthetic import SyntheticLoader
from data_pipelines.tokenize import load_tokenizer
from vla_jax.errors import VLAJaxError
from vla_jax.train import checkpoint as ckpt
from vla_jax.train import distributed, sharding, validate
from vla_jax.train import lora as lora_lib
from vla_jax.train.defaults import base_config
from vla_jax.train.model import (
    ModelBundle,
    backbone_config,
    build_model,
    check_batch,
    data_shapes,
    example_batch,
    load_pretrained,
    loader_config,
)
from vla_jax.train.nonfinite import NonFiniteGuard
from vla_jax.train.optimizer import make_optimizer, trainable_mask
from vla_jax.train.state import TrainState
from vla_jax.train.step import FAST_COMPILE_OPTIONS, jit_step, make_step_fn

log = logging.getLogger("vla_jax.train")

DATA_ITERATORS_DIR = "data_iterators"  # workdir/data_iterators/process_<i>/: the rlds loader's tf.data state
# Keys that may change when resuming a workdir; anything else must match the original config.
RESUMABLE_KEYS = ("num_steps", "log_every", "checkpoint", "wandb", "progress_bar", "xla_fast_compile", "on_nonfinite")


def make_data(config: ml_collections.ConfigDict, process_index: int, process_count: int, state_dir=None):
    """The host's loader; `state_dir` holds the rlds loader's tf.data iterator checkpoints (exact resume)."""
    data = config.data
    if data.source == "synthetic":
        return SyntheticLoader(
            global_batch_size=config.batch_size,
            process_index=process_index,
            process_count=process_count,
            seed=config.seed,
            vocab_size=backbone_config(config.model).vocab_size,
            **data_shapes(config),
        )
    if data.source == "loader":
        if not data.tokenizer:
            raise VLAJaxError("config data.tokenizer is empty; set it to the converted model folder (tokenizer.json)")
        return make_loader(
            loader_config(config),
            tokenizer=load_tokenizer(data.tokenizer),
            global_batch_size=config.batch_size,
            process_index=process_index,
            process_count=process_count,
            seed=config.seed,
            train=True,
            state_dir=state_dir,
            state_keep=int(config.checkpoint.keep),
        )
    raise VLAJaxError(f"config data.source={data.source!r}: choose 'synthetic' or 'loader'")


def _with_defaults(saved: Any, defaults: Any) -> Any:
    if not (isinstance(saved, dict) and isinstance(defaults, dict)):
        return saved
    return {**defaults, **{k: _with_defaults(v, defaults.get(k)) for k, v in saved.items()}}


def _check_resumed_config(workdir: Path, config: ml_collections.ConfigDict) -> None:
    saved = ckpt.upgrade_saved_config(json.loads((workdir / ckpt.CONFIG_FILE).read_text()))
    now = json.loads(config.to_json())
    # A key the saved config lacks (added to base_config since) counts as its default.
    saved = _with_defaults(saved, json.loads(base_config().to_json()))
    diffs = [k for k in sorted(set(saved) | set(now)) if k not in RESUMABLE_KEYS and saved.get(k) != now.get(k)]
    if diffs:
        raise VLAJaxError(
            f"{workdir} was started with a different config ({', '.join(diffs)} changed); resume with the "
            f"original values (only {', '.join(RESUMABLE_KEYS)} may change) or use a new --workdir"
        )


def _to_json_safe(stats: Any) -> Any:
    return json.loads(json.dumps(stats, default=lambda o: np.asarray(o).tolist()))


class _Stopper:
    """Turns SIGTERM/SIGINT into a flag the loop polls (collectively when multi-host)."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def should_stop(self) -> bool:
        flag = np.int32(self.signum or 0)
        if jax.process_count() > 1:  # every host must stop at the same step to save collectively
            flag = np.max(multihost_utils.process_allgather(flag))
            if flag and self.signum is None:
                self.signum = int(flag)
        return bool(flag)


class _Logger:
    """Process 0 only: tqdm bar, metrics.jsonl, TensorBoard, optional wandb."""

    def __init__(self, config, workdir: Path, start: int, total: int):
        self.active = distributed.is_main_process()
        self.config = config
        self.bar = self.tb = self.wandb = None
        if not self.active:
            return
        self.bar = tqdm(
            total=total, initial=start, desc="train", unit="step", dynamic_ncols=True, disable=not config.progress_bar
        )
        self.metrics_file = open(workdir / ckpt.METRICS_FILE, "a")
        # A resumed run rewrites the steps after its checkpoint: TensorBoard hides the old ones.
        self.tb = SummaryWriter(str(workdir / "tensorboard"), purge_step=start + 1 if start else None)
        if config.wandb.enabled:
            try:
                import wandb  # pyright: ignore[reportMissingImports]  (optional: the `wandb` extra)
            except ImportError:
                raise VLAJaxError(
                    "config wandb.enabled=True but wandb is not installed; `pip install wandb` "
                    "or drop --config.wandb.enabled"
                ) from None
            self.wandb = wandb.init(
                project=config.wandb.project,
                name=config.wandb.name or workdir.name,
                config=config.to_dict(),
                dir=str(workdir),
                resume="allow",
            )

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        if self.bar is None or self.tb is None:  # not process 0
            return
        record: dict[str, Any] = {"step": step}
        for key, value in metrics.items():
            value = np.asarray(value)
            record[key] = value.tolist() if value.ndim else float(value)
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()
        for key, value in record.items():
            if key == "step":
                continue
            if isinstance(value, list):
                for i, v in enumerate(value):
                    self.tb.add_scalar(f"{key}/dim{i}", v, step)
            else:
                self.tb.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in record.items() if k != "step"}, step=step)
        self.bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['learning_rate']:.2e}")

    def close(self) -> None:
        if self.bar is None or self.tb is None:  # not process 0
            return
        self.bar.close()
        self.metrics_file.close()
        self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


@dataclasses.dataclass
class Trainer:
    """Everything derived from (config, mesh, model) before any data or checkpoint is touched."""

    bundle: ModelBundle
    mask: Any  # bool tree: trainable leaves
    optimizer: Any
    schedule: Any
    abstract_state: TrainState
    state_shardings: Any
    rng: jax.Array
    init_state: Callable[[jax.Array], TrainState]  # jitted straight into state_shardings
    step: Callable[[TrainState, dict], tuple[TrainState, dict]]  # jitted, state donated
    use_lora: bool


def build_trainer(config: ml_collections.ConfigDict, mesh, bundle: ModelBundle) -> Trainer:
    init_batch = example_batch(config)
    use_lora = bool(config.lora.enabled)

    def init_params(rng):
        param_rng, lora_rng = jax.random.split(rng)
        params = bundle.module.init({"params": param_rng, "dropout": param_rng}, init_batch, deterministic=True)[
            "params"
        ]
        if use_lora:
            params = {"base": params, "lora": lora_lib.init_lora(params, config.lora, lora_rng)}
        return params

    rng = jax.random.key_data(jax.random.key(config.seed))
    abstract_params = jax.eval_shape(init_params, rng)
    mask = trainable_mask(abstract_params, config.freeze, lora_enabled=use_lora)
    optimizer, schedule = make_optimizer(config, abstract_params, mask)

    def init_state(rng):
        return TrainState.create(init_params(rng), optimizer, jax.random.fold_in(rng, 1))

    abstract_state = jax.eval_shape(init_state, rng)
    state_shardings = sharding.tree_shardings(abstract_state, mesh, config.mesh.min_shard_size)
    options = FAST_COMPILE_OPTIONS if config.xla_fast_compile else None
    step = jit_step(
        make_step_fn(
            bundle.module.apply,
            bundle.loss_fn,
            optimizer,
            schedule,
            mask,
            lora_cfg=config.lora,
            grad_accum_steps=int(config.optimizer.grad_accum_steps),
        ),
        state_shardings,
        list(init_batch),
        mesh,
        compiler_options=options,
    )
    return Trainer(
        bundle,
        mask,
        optimizer,
        schedule,
        abstract_state,
        state_shardings,
        rng,
        jax.jit(init_state, out_shardings=state_shardings, compiler_options=options),
        step,
        use_lora,
    )


def train(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    model: ModelBundle | None = None,
    on_step: Callable[[int], None] | None = None,
) -> int:
    """Run (or resume) training in ``workdir``; returns the process exit code.

    ``model`` replaces the config's VLA policy (tests use tiny stand-ins);
    ``on_step(step)`` is called after each finished step (tests send signals from it).
    """
    validate.check_train_config(config)
    distributed.initialize_from_env()
    workdir = Path(workdir).absolute()
    main = distributed.is_main_process()
    mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp)
    sharding.check_global_batch(config.batch_size, mesh)
    accum = int(config.optimizer.grad_accum_steps)
    total = int(config.num_steps) * accum

    validate.check_workdir(workdir)
    checkpointer = ckpt.Checkpointer(
        workdir,
        every=config.checkpoint.every * accum,
        keep=config.checkpoint.keep,
        use_async=config.checkpoint.use_async,
    )
    resume_step = checkpointer.latest_step()
    if resume_step is not None and (workdir / ckpt.CONFIG_FILE).is_file():
        _check_resumed_config(workdir, config)
    if main:
        ckpt.write_json(workdir / ckpt.CONFIG_FILE, json.loads(config.to_json()))

    loader = make_data(config, jax.process_index(), jax.process_count(), state_dir=str(workdir / DATA_ITERATORS_DIR))
    statistics = _to_json_safe(loader.statistics)
    stats_path = workdir / ckpt.STATISTICS_FILE
    if resume_step is not None and stats_path.is_file() and json.loads(stats_path.read_text()) != statistics:
        raise VLAJaxError(
            f"{stats_path}: the data statistics changed since this run started; resume with the "
            "same data or start a new --workdir"
        )
    if main:
        ckpt.write_json(stats_path, statistics)

    trainer = build_trainer(config, mesh, model or build_model(config))
    state_shardings, abstract_state, use_lora = trainer.state_shardings, trainer.abstract_state, trainer.use_lora
    rng = trainer.rng

    restored = None
    if resume_step is not None:
        target = jax.tree.map(
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state, state_shardings
        )
        restored = checkpointer.restore_newest_intact(target)
    if restored is not None:
        resume_step, state, data_state = restored
        loader.set_state(data_state)
        note = f"resumed from {workdir / ckpt.CHECKPOINT_DIR / str(resume_step)}"
    else:
        state = trainer.init_state(rng)
        note = "fresh initialisation"
        if config.init_from:
            base = state.params["base"] if use_lora else state.params
            host, note = load_pretrained(config.init_from, jax.device_get(base), config, trainer.bundle)
            shard_tree = state_shardings.params["base"] if use_lora else state_shardings.params
            placed = jax.tree.map(
                lambda a, s: jax.make_array_from_callback(a.shape, s, lambda idx, a=a: a[idx]), host, shard_tree
            )
            state = state.replace(params={**state.params, "base": placed} if use_lora else placed)
    start = int(jax.device_get(state.step))
    if main:
        dropped = ckpt.trim_metrics(workdir, start)
        if dropped:
            log.info("metrics.jsonl: dropped %d line(s) after step %d (this run writes them again)", dropped, start)
        n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(abstract_state.params))
        n_train = sum(
            int(np.prod(x.shape))
            for x, m in zip(jax.tree.leaves(abstract_state.params), jax.tree.leaves(trainer.mask))
            if m
        )
        log.info(
            "%s; step %d/%d; mesh %s; %d processes; params %d (trainable %d)",
            note,
            start,
            total,
            dict(mesh.shape),
            jax.process_count(),
            n_params,
            n_train,
        )

    step_fn = trainer.step
    logger = _Logger(config, workdir, start, total)
    exit_code, step = 0, start
    guard = NonFiniteGuard(str(config.get("on_nonfinite", "stop")), resume_step if restored is not None else None)
    iterator = iter(loader)
    last_time, last_step = time.perf_counter(), start
    try:
        with _Stopper() as stopper:
            while step < total:
                # Synchronous on purpose: the loader state saved with a checkpoint must be exactly the
                # batches consumed; the jitted step is dispatched asynchronously, so the host builds
                # the next batch while the devices run this one.
                host_batch = next(iterator)
                if step == start:
                    check_batch(config, host_batch)
                batch = to_global_batch(host_batch, mesh)
                state, metrics = step_fn(state, batch)
                step += 1
                guard.observe(step, metrics)
                logger.advance()
                if step % config.log_every == 0 or step == total:
                    guard.flush()
                    metrics = jax.device_get(metrics)
                    metrics["nonfinite_skipped"] = guard.skipped
                    now = time.perf_counter()
                    metrics["samples_per_s"] = config.batch_size * (step - last_step) / max(now - last_time, 1e-9)
                    last_time, last_step = now, step
                    logger.write(step, metrics)
                if on_step is not None:
                    on_step(step)
                stop = stopper.should_stop()
                if step % checkpointer.every == 0 or step == total or stop:
                    guard.flush()  # in "stop" mode a bad step ends the run before anything is saved
                    checkpointer.save(step, state, loader.get_state())
                    guard.saved(step)
                if stop:
                    exit_code = 130 if stopper.signum == signal.SIGINT else 143
                    if main:
                        log.warning(
                            "stopped by signal %d at step %d; checkpoint saved; rerun to resume", stopper.signum, step
                        )
                    break
            guard.flush()
            checkpointer.wait()
            if guard.skipped and main:
                log.warning(
                    "%d of %d steps had a non-finite loss, gradient or update and were skipped",
                    guard.skipped,
                    step - start,
                )
    finally:
        logger.close()
        checkpointer.close()
    return exit_code
