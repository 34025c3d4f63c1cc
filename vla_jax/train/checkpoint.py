"""Workdir layout, orbax checkpointing, exact resume, and loading a workdir for inference.

A training workdir (what `vla-jax train --workdir DIR` writes and `vla-jax
export --workdir DIR` reads)::

    DIR/
      config.json          full train config (ml_collections ConfigDict as JSON), written at start
      statistics.json      dataset action statistics the run normalised with (loader.statistics)
      metrics.jsonl        one JSON line per logged step: step, loss, grad_norm, lr, ... (process 0)
      tensorboard/         TensorBoard event files (process 0)
      checkpoints/<step>/  orbax checkpoint, three items:
          params/          the float32 param tree (LoRA layout {"base", "lora"} when lora.enabled)
          train/           {"step", "opt_state", "rng"}
          data/            {"process_<i>": loader.get_state() of process i} (JSON)
      data_iterators/      rlds loader only: process_<i>/batches_<n>.* tf.data iterator checkpoints named by
                           the JSON state above (data_pipelines/iterator_state.py; the newest `keep` kept)

Checkpoints are written collectively and asynchronously by orbax's
`CheckpointManager` (keep-N, every K steps, plus a forced save on pre-emption);
params are a separate item so export and evaluation read only the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from data_pipelines import loader
from vla_jax.errors import VLAJaxError
from vla_jax.train import lora

CONFIG_FILE = "config.json"
STATISTICS_FILE = "statistics.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"


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
    """Thin wrapper over `ocp.CheckpointManager` for the TrainState + loader state."""

    def __init__(self, workdir: str | Path, *, every: int, keep: int, use_async: bool = True):
        self.directory = Path(workdir).absolute() / CHECKPOINT_DIR
        self.every = int(every)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=int(keep),
            enable_async_checkpointing=bool(use_async),
            create=True,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("params", "train", "data"))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, data_state: dict[str, Any]) -> bool:
        """Collective: every process calls it with its own loader state; the caller picks the steps."""
        states = _gather_json(data_state)
        data = {f"process_{i}": s for i, s in enumerate(states)}
        train = {"step": state.step, "opt_state": state.opt_state, "rng": state.rng}
        return self.manager.save(
            step,
            args=ocp.args.Composite(
                params=ocp.args.StandardSave(state.params),
                train=ocp.args.StandardSave(train),
                data=ocp.args.JsonSave(data),
            ),
            force=True,
        )

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
        """The state (sharded like ``abstract_state``) and this process's loader state."""
        train_target = {"step": abstract_state.step, "opt_state": abstract_state.opt_state, "rng": abstract_state.rng}
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(
                params=ocp.args.StandardRestore(abstract_state.params),
                train=ocp.args.StandardRestore(train_target),
                data=ocp.args.JsonRestore(),
            ),
        )
        train = restored["train"]
        state = abstract_state.replace(
            step=train["step"], params=restored["params"], opt_state=train["opt_state"], rng=train["rng"]
        )
        data = restored["data"]
        key = f"process_{jax.process_index()}"
        if len(data) != jax.process_count() or key not in data:
            raise VLAJaxError(
                f"{self.directory / str(step)}: checkpoint was written by {len(data)} processes, this run has "
                f"{jax.process_count()}; resume with the same number of hosts (the data iterator is per host)"
            )
        return state, data[key]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


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
    """(step, raw params tree as numpy arrays) of a checkpoint; latest when ``step`` is None."""
    directory = Path(workdir).absolute() / CHECKPOINT_DIR
    if not directory.is_dir():
        raise VLAJaxError(f"{directory} not found: {workdir} has no checkpoints yet (train for at least one save)")
    manager = ocp.CheckpointManager(directory, item_handlers={"params": ocp.StandardCheckpointHandler()})
    try:
        steps = manager.all_steps()
        if not steps:
            raise VLAJaxError(f"{directory} holds no finished checkpoint; train until the first save")
        if step is None:
            step = max(steps)
        elif step not in steps:
            raise VLAJaxError(f"{directory}: no checkpoint at step {step}; available steps: {sorted(steps)}")
        # Host numpy targets (np.empty allocates lazily): export/eval run anywhere, with any device count.
        metadata = manager.item_metadata(step)["params"]
        target = jax.tree.map(lambda m: np.empty(m.shape, m.dtype), metadata)
        restored = manager.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore(target)))
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
