"""Workdir layout, orbax checkpointing, exact resume, and loading a workdir for inference.

A training workdir (what `vla-jax train --workdir DIR` writes and `vla-jax
export --workdir DIR` reads)::

    DIR/
      config.json          full train config (ml_collections ConfigDict as JSON), written at start
      statistics.json      dataset action statistics the run normalised with (loader.statistics)
      metrics.jsonl        one JSON line per logged step: step, loss, grad_norm, lr, ... (process 0)
      tensorboard/         TensorBoard event files (process 0)
      checkpoints/<step>/  orbax checkpoint, four items:
          params/          the float32 param tree (LoRA layout {"base", "lora"} when lora.enabled)
          train/           {"step", "opt_state", "rng"}
          data/            {"process_<i>": loader.get_state() of process i} (JSON)
          integrity/       per-array checksums of params and train, sha256 of data (JSON)
      corrupt_checkpoints/<step>/  a checkpoint that failed its check, moved aside at resume
      data_iterators/      rlds loader only: process_<i>/batches_<n>.* tf.data iterator checkpoints named by
                           the JSON state above (data_pipelines/iterator_state.py; the newest `keep` kept)

Checkpoints are written collectively and asynchronously by orbax's
`CheckpointManager` (keep-N, every K steps, plus a forced save on pre-emption);
params are a separate item so export and evaluation read only the weights.

Every restore checks the checksums (`vla_jax.train.integrity`). Resuming tries
the newest checkpoint first; one that is damaged or truncated is reported in one
line naming its step and file, moved aside, and the next older one is used, so
the run continues exactly as a clean run from that step would. Export and
evaluation refuse a damaged checkpoint instead and name an intact step to use.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from data_pipelines import loader
from vla_jax.errors import VLAJaxError
from vla_jax.train import integrity, lora
from vla_jax.train.integrity import CorruptCheckpoint

log = logging.getLogger("vla_jax.train")

CONFIG_FILE = "config.json"
STATISTICS_FILE = "statistics.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
CORRUPT_DIR = "corrupt_checkpoints"
ITEMS = ("params", "train", "data", "integrity")


def _gather_json(obj: Any) -> list[Any]:
    """Every process's JSON-able ``obj``, in process order (collective when multi-process)."""
    if jax.process_count() == 1:
        return [obj]
    raw = np.frombuffer(json.dumps(obj).encode(), np.uint8)
    lengths = multihost_utils.process_allgather(np.asarray([raw.size], np.int32))
    padded = np.zeros((int(np.max(lengths)),), np.uint8)
    padded[: raw.size] = raw
    everything = multihost_utils.process_allgather(padded)
    return [json.loads(bytes(row[: int(n)]).decode()) for row, n in zip(everything, np.ravel(lengths))]


class Checkpointer:
    """Thin wrapper over `ocp.CheckpointManager` for the TrainState + loader state, with integrity data."""

    def __init__(self, workdir: str | Path, *, every: int, keep: int, use_async: bool = True):
        if int(every) < 1 or int(keep) < 1:
            raise VLAJaxError(
                f"checkpoint every={every}, keep={keep}: both must be >= 1 "
                "(--config.checkpoint.every / --config.checkpoint.keep)"
            )
        self.workdir = Path(workdir).absolute()
        self.directory = self.workdir / CHECKPOINT_DIR
        self.every = int(every)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=int(keep),
            enable_async_checkpointing=bool(use_async),
            create=True,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, data_state: dict[str, Any]) -> bool:
        """Collective: every process calls it with its own loader state; the caller picks the steps."""
        states = _gather_json(data_state)
        data = {f"process_{i}": s for i, s in enumerate(states)}
        train = {"step": state.step, "opt_state": state.opt_state, "rng": state.rng}
        bad = first_nonfinite(state.params)
        if bad is not None:  # the train step never applies a non-finite update: this is the last line of defence
            raise VLAJaxError(
                f"step {step}: param {bad} is not finite; refusing to save it to {self.directory / str(step)}"
            )
        sums = integrity.tree_checksums({"params": state.params, "train": train})
        record = {"version": 1, "arrays": sums, "data_sha256": integrity.json_digest(data)}
        return self.manager.save(
            step,
            args=ocp.args.Composite(
                params=ocp.args.StandardSave(state.params),
                train=ocp.args.StandardSave(train),
                data=ocp.args.JsonSave(data),
                integrity=ocp.args.JsonSave(record),
            ),
            force=True,
        )

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
        """The state (sharded like ``abstract_state``) and this process's loader state, verified."""
        train_target = {"step": abstract_state.step, "opt_state": abstract_state.opt_state, "rng": abstract_state.rng}
        where = self.directory / str(step)
        args = {
            "params": ocp.args.StandardRestore(abstract_state.params),
            "train": ocp.args.StandardRestore(train_target),
            "data": ocp.args.JsonRestore(),
        }
        has_record = (where / "integrity").is_dir()
        if has_record:
            args["integrity"] = ocp.args.JsonRestore()
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(**args))
        except Exception as err:  # tensorstore / orbax raise many types for damaged files: name the file
            _silence_stray_reads()
            raise CorruptCheckpoint(f"checkpoint step {step} cannot be read: {_short(err, where)}") from err
        train = restored["train"]
        data = restored["data"]
        if has_record:
            record = restored["integrity"]
            integrity.check_items(
                record,
                {"params": restored["params"], "train": train},
                lambda item: f"checkpoint step {step} ({where / item})",
            )
            if integrity.json_digest(data) != record["data_sha256"]:
                raise CorruptCheckpoint(
                    f"checkpoint step {step} ({where / 'data'}): the data-iterator state does not match its checksum"
                )
        else:
            log.warning(
                "checkpoint step %d has no integrity record (written by an older vla-jax): restored "
                "without verification",
                step,
            )
        state = abstract_state.replace(
            step=train["step"], params=restored["params"], opt_state=train["opt_state"], rng=train["rng"]
        )
        key = f"process_{jax.process_index()}"
        if len(data) != jax.process_count() or key not in data:
            raise VLAJaxError(
                f"{self.directory / str(step)}: checkpoint was written by {len(data)} processes, this run has "
                f"{jax.process_count()}; resume with the same number of hosts (the data iterator is per host)"
            )
        return state, data[key]

    def restore_newest_intact(self, abstract_state: Any) -> tuple[int, Any, dict[str, Any]] | None:
        """(step, state, loader state) of the newest checkpoint that passes its checks; None if there is none.

        Each damaged one is reported in one line; once an older one has restored intact, the damaged
        newer ones are moved to ``corrupt_checkpoints/`` (so the run can save those steps again). When
        none restores, nothing is moved (the cause may be this code, not the files) and the run stops:
        it never starts from scratch over a workdir that had progress.
        """
        failures: list[tuple[int, str]] = []
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                state, data = self.restore(step, abstract_state)
            except CorruptCheckpoint as err:
                failures.append((step, str(err)))
                log.error("%s", err)
                continue
            for bad, _ in failures:
                log.warning("checkpoint step %d moved to %s", bad, self._move_aside(bad))
            if failures:
                log.warning(
                    "falling back: resuming from step %d, the newest intact checkpoint (damaged: %s)",
                    step,
                    ", ".join(f"step {bad}" for bad, _ in failures),
                )
            return step, state, data
        if failures:
            steps = ", ".join(f"step {bad}" for bad, _ in failures)
            raise CorruptCheckpoint(
                f"{self.directory}: no checkpoint restores ({steps}; newest: {failures[0][1]}); "
                "nothing was moved. Fix the cause or start a new --workdir"
            )
        return None

    def _move_aside(self, step: int) -> Path:
        target = self.workdir / CORRUPT_DIR / f"{step}-{time.strftime('%Y%m%dT%H%M%S')}"
        if jax.process_index() == 0:
            target.parent.mkdir(exist_ok=True)
            shutil.move(str(self.directory / str(step)), str(target))
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"checkpoint_moved_{step}")
        self.manager.reload()
        return target

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


_finite_flags = jax.jit(
    lambda tree: jax.tree.map(
        lambda x: jnp.all(jnp.isfinite(x)) if jnp.issubdtype(x.dtype, jnp.inexact) else jnp.asarray(True), tree
    )
)


def first_nonfinite(tree: Any) -> str | None:
    """Path of the first leaf holding a NaN or an infinity (checked on device), or None."""
    flags = jax.tree_util.tree_flatten_with_path(_finite_flags(tree))[0]
    for path, ok in flags:
        if not bool(integrity.host_value(ok)):
            return jax.tree_util.keystr(path, simple=True, separator="/")
    return None


def _silence_stray_reads() -> None:
    """After a failed restore, tensorstore still completes the other reads and calls back into orbax's
    closed event loop: dozens of "Event loop is closed" tracebacks via `sys.unraisablehook`, after
    the one line that says what is wrong. Drop exactly those; everything else reaches the old hook."""
    previous = sys.unraisablehook
    if getattr(previous, "_vla_jax_filter", False):
        return

    def hook(unraisable):
        if unraisable.exc_type is RuntimeError and str(unraisable.exc_value) == "Event loop is closed":
            return
        previous(unraisable)

    hook._vla_jax_filter = True
    sys.unraisablehook = hook


def _short(err: BaseException, where: Path) -> str:
    """One line out of a (often multi-screen) orbax/tensorstore error: the reason that names a file."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    link: BaseException | None = err
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        chain.append(link)
        link = link.__cause__ or link.__context__
    lines = [line.strip() for e in chain for line in str(e).splitlines() if line.strip()]
    fallback = lines[0] if lines else type(chain[0]).__name__
    best = next((line for line in reversed(lines) if str(where) in line), fallback)
    return best if len(best) <= 300 else best[:300] + "..."


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


# Config keys renamed since workdirs were first written (old dotted path -> new one): a workdir written
# before a rename still exports, evaluates and resumes.
RENAMED_KEYS = {
    "model.fwd_pred_next_n": "model.action_chunk",
}


# Keys workdirs once stated and today's configs derive (vla_jax.train.model.data_shapes): dropped on read.
DERIVED_KEYS = tuple(f"data.config.{k}" for k in (*loader.SHAPE_KEYS, "max_text_len"))


def upgrade_saved_config(saved: dict[str, Any]) -> dict[str, Any]:
    """A workdir's config.json content in today's key names (RENAMED_KEYS, DERIVED_KEYS dropped)."""
    for old, new in RENAMED_KEYS.items():
        *old_parents, old_leaf = old.split(".")
        *new_parents, new_leaf = new.split(".")
        node = saved
        for part in old_parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or old_leaf not in node:
            continue
        value = node.pop(old_leaf)
        target = saved
        for part in new_parents:
            target = target.setdefault(part, {})
        target.setdefault(new_leaf, value)
    data_config = saved.get("data", {}).get("config", {})
    if "resize_pad" in data_config:  # a bool once; policy_io's resize_mode now
        data_config.setdefault("resize_mode", "pad" if data_config.pop("resize_pad") else "resize")
    for key in DERIVED_KEYS:
        data_config.pop(key.rsplit(".", 1)[1], None)
    return saved


def trim_metrics(workdir: str | Path, step: int) -> int:
    """Drop metrics.jsonl lines past ``step`` (the state being resumed): a resumed run rewrites them.

    Returns how many lines were dropped. A torn last line (a crash mid-write) is dropped too.
    """
    path = Path(workdir) / METRICS_FILE
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            keep = int(json.loads(line)["step"]) <= step
        except (ValueError, KeyError, TypeError):
            keep = False
        if keep:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(path)
    return dropped


def read_config(workdir: str | Path) -> ml_collections.ConfigDict:
    path = Path(workdir) / CONFIG_FILE
    if not path.is_file():
        raise VLAJaxError(f"{path} not found: {workdir} is not a vla-jax training workdir (run `vla-jax train` first)")
    return ml_collections.ConfigDict(upgrade_saved_config(json.loads(path.read_text())))


def read_statistics(workdir: str | Path) -> dict[str, Any]:
    path = Path(workdir) / STATISTICS_FILE
    if not path.is_file():
        raise VLAJaxError(f"{path} not found: the workdir has no dataset statistics; rerun `vla-jax train` on it")
    return json.loads(path.read_text())


def load_params(workdir: str | Path, step: int | None = None) -> tuple[int, Any]:
    """(step, raw params tree as numpy arrays) of a checkpoint, verified; latest when ``step`` is None."""
    directory = Path(workdir).absolute() / CHECKPOINT_DIR
    if not directory.is_dir():
        raise VLAJaxError(f"{directory} not found: {workdir} has no checkpoints yet (train for at least one save)")
    # Every item's handler named, so orbax does not warn about the items this read leaves alone.
    handlers = {
        "params": ocp.StandardCheckpointHandler(),
        "train": ocp.StandardCheckpointHandler(),
        "data": ocp.JsonCheckpointHandler(),
        "integrity": ocp.JsonCheckpointHandler(),
    }
    manager = ocp.CheckpointManager(directory, item_handlers=handlers)
    try:
        steps = manager.all_steps()
        if not steps:
            raise VLAJaxError(f"{directory} holds no finished checkpoint; train until the first save")
        if step is None:
            step = max(steps)
        elif step not in steps:
            raise VLAJaxError(f"{directory}: no checkpoint at step {step}; available steps: {sorted(steps)}")
        older = sorted((s for s in steps if s < step), reverse=True)
        hint = f"; pass --step {older[0]} to use an older one" if older else ""
        where = directory / str(step)
        args = {}
        has_record = (where / "integrity").is_dir()
        if has_record:
            args["integrity"] = ocp.args.JsonRestore()
        try:
            # Host numpy targets (np.empty allocates lazily): export/eval run anywhere, with any device count.
            metadata = manager.item_metadata(step)["params"]
            target = jax.tree.map(lambda m: np.empty(m.shape, m.dtype), metadata)
            restored = manager.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore(target), **args))
        except Exception as err:  # damaged files: tensorstore's many error types, one line
            _silence_stray_reads()
            raise CorruptCheckpoint(f"checkpoint step {step} cannot be read: {_short(err, where)}{hint}") from err
        if has_record:
            try:
                integrity.check_items(
                    restored["integrity"],
                    {"params": restored["params"]},
                    lambda item: f"checkpoint step {step} ({where / item})",
                )
            except CorruptCheckpoint as err:
                raise CorruptCheckpoint(f"{err}{hint}") from None
        return step, restored["params"]
    finally:
        manager.close()


def load_for_inference(workdir: str | Path, step: int | None = None) -> tuple[ml_collections.ConfigDict, Any, dict]:
    """(full train config, plain model params as numpy float32, statistics) of a workdir.

    LoRA adapters are folded into the base weights, so callers (export,
    evaluation) always get the model's own param tree.
    """
    config = read_config(workdir)
    _, params = load_params(workdir, step)
    lora_config: Any = config.get("lora", {})
    if lora_config.get("enabled", False):
        params = jax.tree.map(np.asarray, lora.merge(params["base"], params["lora"], config.lora))
    return config, params, read_statistics(workdir)
