"""Generated data with the real loader protocol, for `configs/tiny.py` and the trainer tests.

Every sample is a pure function of ``(seed, step, global_row)``: a host
generates only its own rows (``process_index`` picks them), any process count
sees the same global batch, and the iterator state is just the step number,
so resume is exact by construction. The task is learnable: each sample's
frames are one flat colour plus noise and its action chunk is that colour
mapped to [-1, 1] (dims cycle over R, G, B), scaled by a sign the instruction
token carries, so a policy that reads image and text drives the loss down.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from data_pipelines.errors import DataError

BOS, PAD, EOS = 0, 1, 2
_LEFT, _RIGHT = 5, 6  # instruction "side" token: sets the action's sign


class SyntheticLoader:
    """Loader protocol: ``__iter__``, ``get_state``, ``set_state``, ``statistics``."""

    def __init__(
        self,
        *,
        global_batch_size: int,
        process_index: int = 0,
        process_count: int = 1,
        seed: int = 0,
        image_size: int = 32,
        window_size: int = 1,
        action_chunk: int = 1,
        action_dim: int = 2,
        instruction_length: int = 8,
        vocab_size: int = 64,
        noise: float = 8.0,
    ):
        if global_batch_size % process_count:
            raise DataError(
                f"synthetic data: global_batch_size={global_batch_size} is not divisible by "
                f"{process_count} processes; pick a multiple of the process count"
            )
        if vocab_size <= _RIGHT + 1 or instruction_length < 3:
            raise DataError("synthetic data: need vocab_size > 7 and instruction_length >= 3")
        self.global_batch_size = global_batch_size
        self.per_host = global_batch_size // process_count
        self.row_offset = process_index * self.per_host
        self.seed = seed
        self.image_size, self.window_size, self.action_chunk = image_size, window_size, action_chunk
        self.action_dim, self.instruction_length, self.vocab_size = action_dim, instruction_length, vocab_size
        self.noise = noise
        self._step = 0

    # -- protocol -----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        while True:
            batch = self.batch_at(self._step)
            self._step += 1
            yield batch

    def get_state(self) -> dict[str, Any]:
        return {"step": self._step, "seed": self.seed, "global_batch_size": self.global_batch_size}

    def set_state(self, state: dict[str, Any]) -> None:
        for key in ("seed", "global_batch_size"):
            if key in state and state[key] != getattr(self, key):
                raise DataError(
                    f"synthetic data: checkpointed iterator has {key}={state[key]} but the config has "
                    f"{getattr(self, key)}; resume with the original value"
                )
        self._step = int(state["step"])

    @property
    def statistics(self) -> dict[str, Any]:
        a = self.action_dim
        return {
            "synthetic": {
                "action": {
                    "mean": [0.0] * a,
                    "std": [0.5] * a,
                    "min": [-1.0] * a,
                    "max": [1.0] * a,
                    "q01": [-0.98] * a,
                    "q99": [0.98] * a,
                    "mask": [True] * a,
                },
                "normalization": "bounds",
            }
        }

    # -- generation ---------------------------------------------------------------------------
    def batch_at(self, step: int) -> dict[str, np.ndarray]:
        rows = [self._sample(step, self.row_offset + i) for i in range(self.per_host)]
        return {key: np.stack([row[key] for row in rows]) for key in rows[0]}

    def _sample(self, step: int, row: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, step, row])
        t, c, a, s, n = self.window_size, self.action_chunk, self.action_dim, self.image_size, self.instruction_length
        colour = rng.uniform(16, 240, size=3)
        image = colour + rng.normal(0, self.noise, size=(t, s, s, 3))
        image = np.clip(image, 0, 255).astype(np.uint8)
        side = rng.integers(0, 2)
        sign = 1.0 if side else -1.0
        target = sign * (colour[np.arange(a) % 3] / 128.0 - 1.0)
        action = np.broadcast_to(target, (t, c, a)).astype(np.float32)
        length = int(rng.integers(3, n + 1))
        tokens = np.full((n,), PAD, np.int32)
        tokens[:length] = rng.integers(_RIGHT + 1, self.vocab_size, size=length)
        tokens[0], tokens[1], tokens[length - 1] = BOS, _RIGHT if side else _LEFT, EOS
        return {
            "image": image,
            "image_mask": np.ones((t,), bool),
            "tokens": tokens,
            "token_mask": np.arange(n) < length,
            "action": action,
            "action_mask": np.ones((t, c), bool),
            "action_dim_mask": np.ones((a,), bool),
            "dataset_id": np.zeros((), np.int32),
        }
