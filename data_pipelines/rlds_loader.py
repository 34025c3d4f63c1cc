"""The tf.data RLDS/OXE mixture loader (data config kind "rlds_mixture"), for pre-training."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np

from data_pipelines import mixtures
from data_pipelines.batch import BATCH_KEYS, host_batch_size
from data_pipelines.errors import BadDataCounter, DataError
from data_pipelines.rlds import iterate_numpy
from data_pipelines.tokenize import InstructionTokenizer


class RLDSLoader:
    """tf.data mixture loader.

    Resume: `get_state` records (seed, batches served). `set_state` restarts the
    pipeline with a seed derived from both, so a resumed run sees a fresh,
    deterministic order instead of repeating the first batches; tf.data shuffle
    buffers are not serialised (they would be gigabytes). Use `mobile_grain` when
    bit-exact resume matters.
    """

    def __init__(self, cfg, *, tokenizer, global_batch_size, process_index, process_count, seed, train):
        self.cfg, self.train, self.seed = cfg, train, int(seed)
        self.process_index, self.process_count = process_index, process_count
        self.batch_size = host_batch_size(global_batch_size, process_count)
        self.tokenize = InstructionTokenizer(tokenizer, cfg["instruction_length"])
        self.bad_episodes = BadDataCounter("rlds")
        self._batches = 0
        self._restart_seed = self.seed
        self._build()

    def _build(self):
        self.dataset, self.statistics, self.weights = mixtures.make_mixture_dataset(
            self.cfg,
            batch_size=self.batch_size,
            train=self.train,
            seed=self._restart_seed,
            process_index=self.process_index,
            process_count=self.process_count,
            counter=self.bad_episodes,
        )

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for batch in iterate_numpy(self.dataset):
            tokens, token_mask = self.tokenize(list(batch.pop("language_instruction")))
            batch.pop("episode_id", None)
            batch["tokens"], batch["token_mask"] = tokens, token_mask
            self._batches += 1
            yield {k: batch[k] for k in BATCH_KEYS}

    def get_state(self) -> dict:
        return {"kind": "rlds_mixture", "seed": self.seed, "restart_seed": self._restart_seed, "batches": self._batches}

    def set_state(self, state: dict) -> None:
        if state.get("kind") != "rlds_mixture":
            raise DataError(
                f"loader state {json.dumps(state)[:200]} is not an rlds_mixture state; "
                "resume with the data config the checkpoint was written with"
            )
        self._batches = int(state["batches"])
        self._restart_seed = (int(state["restart_seed"]) * 1_000_003 + self._batches) % (2**31 - 1)
        self._build()
