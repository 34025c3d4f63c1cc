"""The tf.data RLDS/OXE mixture loader (data config kind "rlds_mixture"), for pre-training."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import numpy as np

from data_pipelines import mixtures
from data_pipelines.batch import BATCH_KEYS, host_batch_size
from data_pipelines.errors import BadDataCounter, DataError
from data_pipelines.iterator_state import IteratorCheckpoints
from data_pipelines.rlds import numpy_batches
from data_pipelines.tokenize import InstructionTokenizer

log = logging.getLogger("data_pipelines")


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
        self.cfg, self.train, self.seed = cfg, train, int(seed)
        self.process_index, self.process_count = process_index, process_count
        self.batch_size = host_batch_size(global_batch_size, process_count)
        self.tokenize = InstructionTokenizer(tokenizer, cfg["instruction_length"])
        self.bad_episodes = BadDataCounter("rlds")
        self.checkpoints = IteratorCheckpoints(state_dir, process_index, state_keep) if state_dir else None
        self._batches = 0
        self._build(skip_samples=0)

    def _build(self, skip_samples: int):
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
