"""A training workdir as a closed-loop policy, run by JAX directly: the reference an export is compared with.

Same contract as the torch runtime's `vla_runtime.Policy`: ``reset(instruction)``,
``step(frame) -> [C, A]`` in robot units, and the same policy I/O, because both call
`vla_runtime.policy_io`: the camera frame goes through the workdir's preprocessing
(channel order, resize mode, image size), the history window is padded with zero
frames masked out, the instruction is tokenized with the workdir's tokenizer in the
export's token layout, and the newest history slot's chunk is de-normalised with the
workdir's statistics under the one clipping rule. It re-runs the whole window every
step (no incremental cache) in float32: it is the reference, not the fast path.
"""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path
from typing import Any

import jax
import numpy as np

from data_pipelines.tokenize import InstructionTokenizer, load_tokenizer
from vla_jax.errors import VLAJaxError
from vla_jax.train.checkpoint import load_for_inference
from vla_jax.train.model import preprocessing, vla_config
from vla_jax.train.step import FAST_COMPILE_OPTIONS
from vla_jax.vla import VLAPolicy
from vla_runtime.policy_io import ActionStatistics, pad_history, to_model_frame

_COMPILED: dict[Any, Any] = {}


def reference_actions(config, fast_compile: bool = False):
    """Jitted float32 VLAPolicy(config) -> normalised actions [B, T, C, A], compiled once per config."""
    f32 = config.replace(backbone=dataclasses.replace(config.backbone, dtype="float32"))
    key = (f32, fast_compile)
    if key not in _COMPILED:

        def actions(params, batch):
            outputs: Any = VLAPolicy(f32).apply({"params": params}, batch)
            return outputs["action"]

        _COMPILED[key] = jax.jit(actions, compiler_options=FAST_COMPILE_OPTIONS if fast_compile else None)
    return _COMPILED[key]


class JaxWorkdirPolicy:
    def __init__(
        self, config, params, statistics: dict, *, input_channel_order: str = "RGB", fast_compile: bool = False
    ):
        if not config.data.get("tokenizer"):
            raise VLAJaxError(
                "the workdir's config has no data.tokenizer folder; a JAX policy needs the tokenizer "
                "training used (export the workdir and evaluate the export instead)"
            )
        if len(statistics) != 1:
            raise VLAJaxError(
                f"the workdir's statistics.json holds {len(statistics)} datasets "
                f"({', '.join(statistics)}); closed-loop evaluation needs the one mobile dataset"
            )
        self.vla_config = vla_config(config)
        self.statistics = ActionStatistics.from_dict(next(iter(statistics.values())), "the workdir's statistics")
        self.preprocessing = preprocessing(config, input_channel_order)
        self.window = self.vla_config.window_size
        self.tokenizer = InstructionTokenizer(
            load_tokenizer(str(config.data.tokenizer)), int(config.data.instruction_length)
        )
        self.params = jax.tree.map(jax.numpy.asarray, params)
        self._apply = reference_actions(self.vla_config, fast_compile)
        self.reset("")

    @classmethod
    def load(cls, workdir: str | Path, step: int | None = None, **kwargs) -> JaxWorkdirPolicy:
        config, params, statistics = load_for_inference(workdir, step)
        return cls(config, params, statistics, **kwargs)

    def reset(self, instruction: str) -> None:
        self.tokens, self.token_mask = self.tokenizer([instruction]) if instruction else (None, None)
        self.history: collections.deque = collections.deque(maxlen=self.window)

    def predict_normalized(self, image: np.ndarray) -> np.ndarray:
        """One control step in model units: [C, A] (float64)."""
        if self.tokens is None:
            raise VLAJaxError("call reset(instruction) with a non-empty instruction before step()")
        self.history.append(to_model_frame(image, self.preprocessing))
        frames, image_mask = pad_history(self.history, self.window)
        batch = {
            "image": frames[None],
            "image_mask": image_mask[None],
            "tokens": self.tokens,
            "token_mask": self.token_mask,
        }
        return np.asarray(self._apply(self.params, batch), np.float64)[0, -1]  # newest history slot: [C, A]

    def step(self, image: np.ndarray) -> np.ndarray:
        """Camera frame (uint8 H x W x 3, any size) -> action chunk [C, A] in robot units (float32)."""
        chunk = self.predict_normalized(image)[:, : self.statistics.action_dim]
        return self.statistics.denormalize(chunk).astype(np.float32)
