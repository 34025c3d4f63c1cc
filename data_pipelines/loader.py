"""`make_loader`: the one entry point the trainer calls (docs/INTERFACES.md, "Data").

    loader = make_loader(data_config, tokenizer=tok, global_batch_size=256,
                         process_index=jax.process_index(), process_count=jax.process_count(), seed=0)
    for host_batch in loader: ...      # host-local numpy dict, leading dim global_batch_size // process_count
    loader.get_state() / loader.set_state(state)   # JSON-serialisable; bit-exact resume (see RLDSLoader)
    loader.statistics                  # {dataset: {"action": {mean,std,min,max,q01,q99,mask}, "normalization": mode}}
    loader.bad_episodes                # BadDataCounter: skipped episodes by reason (skip_bad_episodes=True)

Batch keys (DESIGN.md): image uint8 [b,T,H,W,3], image_mask bool [b,T], tokens int32 [b,L],
token_mask bool [b,L], action f32 [b,T,C,A], action_mask bool [b,T,C], action_dim_mask bool [b,A],
dataset_id int32 [b].

data_config fields (ml_collections.ConfigDict or dict; unset fields take DEFAULTS):
    kind                "rlds_mixture" (tf.data over RLDS/OXE, pre-training) or
                        "mobile_grain" (grain over the ArrayRecord written by `vla-jax convert-episodes`)
    data_dir            folder holding <dataset>/<version>/ (local or gs://)
    mixture             mixture name (oxe_magic_soup, oxe_magic_soup_plus), a registered dataset or alias (bridge_dataset,
                        rt_1, mobile, ...), or a list of [name, weight]; mobile_grain: the dataset name (default "mobile")
    split               override the split (default: the spec's train_split / val_split by `train`)
    window_size         T, history frames per sample (default 1)
    action_chunk        C, future actions per history frame (any C, also C > T; default 1)
    action_dim          A, actions are zero-padded to this many dims (>= every dataset's dims; default 7)
    image_size          output H = W (default 224)
    resize_pad          keep aspect ratio with black padding instead of stretching (default False)
    max_text_len        L, instruction tokens incl. BOS/EOS (default 32)
    normalization       "bounds_q99" (default) | "bounds" | "normal" | "none"
    stats_cache_dir     where statistics JSON files are cached (default ~/.cache/vla_jax/stats)
    shuffle_buffer      frames in the shuffle buffer (rlds; default 10000, images still encoded)
    augment             random resized crop + colour jitter, train only (default True)
    augment_kwargs      overrides of frame_transforms.AugmentConfig fields (default {})
    mirror_augment      mobile: flip image, negate lateral/angular velocity, swap left/right, p=0.5 (default False)
    skip_bad_episodes   skip and count bad episodes instead of raising DataError (default False)
    min_episode_length  shorter episodes are bad data (default 1)
    filter_no_instruction  drop episodes with an empty instruction (rlds; default True)
    max_abs_action      drop episodes with a raw |action| above this (rlds; default None = off)
    max_steps_per_episode  subsample at most this many steps per episode (rlds; default None = all)
    balance_weights     multiply mixture weights by transition counts (default False)
    read_threads, transform_threads   tf.data parallelism budgets for the mixture (default None = AUTOTUNE)
    ram_budget_gb       tf.data autotune RAM bound per host (default 32)
    decode_frames       rlds: "auto" (default) | "trajectory" (each frame once, decoded frames in the shuffle
                        buffer) | "sample" (after the shuffle, T times); see mixtures.decode_in_trajectory
    worker_count        grain worker processes (default 0 = in-process; use 4-16 on a TPU host)
    worker_buffer_size  grain per-worker prefetch (default 2)
    episode_cache       grain: parsed episodes (encoded frames) kept per worker, LRU (default 1024; 0 = off)
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from data_pipelines.errors import BadDataCounter, DataError
from data_pipelines.tokenize import InstructionTokenizer

log = logging.getLogger("data_pipelines")

DEFAULTS: dict[str, Any] = {
    "kind": "rlds_mixture",
    "data_dir": None,
    "mixture": None,
    "split": None,
    "window_size": 1,
    "action_chunk": 1,
    "action_dim": 7,
    "image_size": 224,
    "resize_pad": False,
    "max_text_len": 32,
    "normalization": "bounds_q99",
    "stats_cache_dir": None,
    "shuffle_buffer": 10000,
    "augment": True,
    "augment_kwargs": {},
    "mirror_augment": False,
    "skip_bad_episodes": False,
    "min_episode_length": 1,
    "filter_no_instruction": True,
    "max_abs_action": None,
    "max_steps_per_episode": None,
    "balance_weights": False,
    "read_threads": None,
    "transform_threads": None,
    "ram_budget_gb": 32,
    "decode_frames": "auto",
    "worker_count": 0,
    "worker_buffer_size": 2,
    "episode_cache": 1024,
}
BATCH_KEYS = ("image", "image_mask", "tokens", "token_mask", "action", "action_mask", "action_dim_mask", "dataset_id")


def resolve_config(data_config) -> dict:
    """ConfigDict/dict -> plain dict with defaults; unknown keys are an error (typos must not be ignored)."""
    cfg = data_config.to_dict() if hasattr(data_config, "to_dict") else dict(data_config or {})
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise DataError(
            f"data config has unknown field(s) {unknown}; valid fields: {sorted(DEFAULTS)} "
            "(see data_pipelines/loader.py)"
        )
    out = copy.deepcopy(DEFAULTS)
    out.update({k: v for k, v in cfg.items()})
    if out["kind"] not in ("rlds_mixture", "mobile_grain"):
        raise DataError(f"data config kind={out['kind']!r}: choose 'rlds_mixture' or 'mobile_grain'")
    if not out["data_dir"]:
        raise DataError("data config data_dir is empty; set it to the folder holding the tfds datasets")
    if out["mixture"] is None:
        out["mixture"] = "mobile" if out["kind"] == "mobile_grain" else None
        if out["mixture"] is None:
            raise DataError("data config mixture is empty; set a mixture name such as 'oxe_magic_soup' or 'bridge'")
    for key in ("window_size", "action_chunk", "action_dim", "image_size", "max_text_len"):
        if int(out[key]) < 1:
            raise DataError(f"data config {key}={out[key]}: must be >= 1")
    return out


def _per_host(global_batch_size: int, process_count: int) -> int:
    if global_batch_size % process_count:
        raise DataError(
            f"global_batch_size={global_batch_size} is not divisible by process_count={process_count}; "
            "pick a multiple of the number of hosts"
        )
    return global_batch_size // process_count


class RLDSLoader:
    """tf.data mixture loader with bit-exact resume.

    The pipeline is deterministic given the seed, so a resumed run must continue the
    stream where it stopped, not restart it. With `state_dir` (the trainer passes
    `<workdir>/data_iterators`), `get_state` checkpoints the tf.data iterator itself
    (`iterator_state`: shuffle buffer, file positions, RNG states) and `set_state`
    restores it - O(1) in the steps already trained. Without one (or when the iterator
    file is gone) `set_state` replays: it rebuilds the same pipeline and skips the
    samples already served before decoding them - exact too, but it re-reads the data.
    """

    def __init__(
        self,
        cfg,
        *,
        tokenizer,
        global_batch_size,
        process_index,
        process_count,
        seed,
        train,
        state_dir=None,
        state_keep=3,
    ):
        from data_pipelines.iterator_state import IteratorCheckpoints

        self.cfg, self.train, self.seed = cfg, train, int(seed)
        self.process_index, self.process_count = process_index, process_count
        self.batch_size = _per_host(global_batch_size, process_count)
        self.tokenize = InstructionTokenizer(tokenizer, cfg["max_text_len"])
        self.bad_episodes = BadDataCounter("rlds")
        self.checkpoints = IteratorCheckpoints(state_dir, process_index, state_keep) if state_dir else None
        self._batches = 0
        self._build(skip_samples=0)

    def _build(self, skip_samples: int):
        from data_pipelines import mixtures

        self.dataset, self.statistics, self.weights = mixtures.make_mixture_dataset(
            self.cfg,
            batch_size=self.batch_size,
            train=self.train,
            seed=self.seed,
            process_index=self.process_index,
            process_count=self.process_count,
            counter=self.bad_episodes,
            skip_samples=skip_samples,
        )
        self._iterator = iter(self.dataset)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        from data_pipelines.rlds import numpy_batches

        for batch in numpy_batches(self._iterator):
            tokens, token_mask = self.tokenize(list(batch.pop("language_instruction")))
            batch.pop("episode_id", None)
            batch["tokens"], batch["token_mask"] = tokens, token_mask
            self._batches += 1
            yield {k: batch[k] for k in BATCH_KEYS}

    def get_state(self) -> dict:
        state = {"kind": "rlds_mixture", "seed": self.seed, "batches": self._batches, "process": self.process_index}
        if self.checkpoints is not None:
            state["iterator"] = self.checkpoints.save(self._iterator, self._batches)
        return state

    def set_state(self, state: dict) -> None:
        if state.get("kind") != "rlds_mixture" or int(state.get("seed", -1)) != self.seed:
            raise DataError(
                f"loader state {json.dumps(state)[:200]} is not an rlds_mixture state with seed "
                f"{self.seed}; resume with the data config and seed the checkpoint was written with"
            )
        self._batches = int(state["batches"])
        if state.get("iterator") and self.checkpoints is not None:
            self.checkpoints.restore(self._iterator, state["iterator"])  # overwrites wherever it stood
        else:
            log.info("rlds loader: replaying %d batches to resume exactly (no iterator checkpoint)", self._batches)
            self._build(skip_samples=self._batches * self.batch_size)


def make_loader(
    data_config,
    *,
    tokenizer,
    global_batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
    seed: int = 0,
    train: bool = True,
    state_dir=None,
    state_keep: int = 3,
):
    """Build the loader named by `data_config.kind` (see the module docstring for the fields).

    `state_dir`: where the rlds loader checkpoints its tf.data iterator for exact resume
    (the trainer passes `<workdir>/data_iterators`; grain's state is small JSON already).
    """
    cfg = resolve_config(data_config)
    if cfg["kind"] == "mobile_grain":
        from data_pipelines.grain_loader import MobileGrainLoader

        return MobileGrainLoader(
            cfg,
            tokenizer=tokenizer,
            global_batch_size=global_batch_size,
            process_index=process_index,
            process_count=process_count,
            seed=seed,
            train=train,
        )
    return RLDSLoader(
        cfg,
        tokenizer=tokenizer,
        global_batch_size=global_batch_size,
        process_index=process_index,
        process_count=process_count,
        seed=seed,
        train=train,
        state_dir=state_dir,
        state_keep=state_keep,
    )
