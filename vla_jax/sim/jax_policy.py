"""A training workdir as a closed-loop policy, run by JAX directly (`sim-eval --policy WORKDIR`).

Same contract as the torch runtime's `vla_runtime.Policy`: ``reset(instruction)``,
``step(frame) -> [C, A]`` in robot units. It rebuilds exactly what training fed
the model: the history window padded at the episode start by repeating the
first frame with ``image_mask`` false (data_pipelines.traj_transforms), the
instruction tokenized with the workdir's tokenizer, and the predicted chunk of
the newest history slot de-normalised with the statistics saved in the workdir.
It re-runs the whole window every step (no incremental cache): it is the
reference, not the fast path.
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from vla_jax.errors import VLAJaxError


class JaxWorkdirPolicy:
    def __init__(self, config, params, statistics: dict):
        import jax

        from data_pipelines.tokenize import InstructionTokenizer, load_tokenizer
        from vla_jax.train.model import build_model

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
        self.stats = next(iter(statistics.values()))
        self.mode = self.stats.get("normalization", "bounds_q99")
        self.config = config
        self.window = int(config.model.window_size)
        module = build_model(config).module
        self.image_size = int(module.config.backbone.image_size)
        self.tokenizer = InstructionTokenizer(
            load_tokenizer(str(config.data.tokenizer)), int(config.data.instruction_length)
        )
        self.params = jax.tree.map(jax.numpy.asarray, params)
        self._apply = jax.jit(lambda p, batch: module.apply({"params": p}, batch, deterministic=True)["action"])
        self.reset("")

    @classmethod
    def load(cls, workdir: str | Path, step: int | None = None) -> JaxWorkdirPolicy:
        from vla_jax.train.checkpoint import load_for_inference

        config, params, statistics = load_for_inference(workdir, step)
        return cls(config, params, statistics)

    def reset(self, instruction: str) -> None:
        self.tokens, self.token_mask = self.tokenizer([instruction]) if instruction else (None, None)
        self.history: collections.deque = collections.deque(maxlen=self.window)

    def _frame(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise VLAJaxError(f"frame must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
        if image.shape[:2] != (self.image_size, self.image_size):
            from PIL import Image

            image = np.asarray(Image.fromarray(image).resize((self.image_size, self.image_size), Image.BILINEAR))
        return image

    def step(self, image: np.ndarray) -> np.ndarray:
        from data_pipelines.statistics import denormalize

        if self.tokens is None:
            raise VLAJaxError("call reset(instruction) with a non-empty instruction before step()")
        self.history.append(self._frame(image))
        frames = list(self.history)
        valid = [False] * (self.window - len(frames)) + [True] * len(frames)
        frames = [frames[0]] * (self.window - len(frames)) + frames
        a = int(self.config.model.action_dim)
        batch = {
            "image": np.stack(frames)[None],
            "image_mask": np.asarray(valid)[None],
            "tokens": self.tokens,
            "token_mask": self.token_mask,
            "action": np.zeros((1, self.window, int(self.config.model.fwd_pred_next_n), a), np.float32),
            "action_mask": np.ones((1, self.window, int(self.config.model.fwd_pred_next_n)), bool),
            "action_dim_mask": np.ones((1, a), bool),
            "dataset_id": np.zeros((1,), np.int32),
        }
        chunk = np.asarray(self._apply(self.params, batch))[0, -1]  # newest history slot: [C, A]
        if self.mode in ("bounds", "bounds_q99"):
            chunk = np.clip(chunk, -1.0, 1.0)  # never command beyond the range seen in training
        return np.asarray(denormalize(chunk.astype(np.float32), self.stats, self.mode), np.float32)
