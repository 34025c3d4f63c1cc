"""`Policy`: the robot-facing API. Load an export, `reset(instruction)`, `step(frame) -> [C, A]` in robot units.

    policy = Policy.load("export/", device="cuda")
    policy.reset("Navigate around the obstacle on the left side and reach the target")
    while running:
        chunk = policy.step(camera_frame_uint8)   # [C, A], robot units, clipped to the range seen in training
        robot.send(chunk[0])                     # receding horizon: execute the first action, re-plan

`mode="receding"` returns the newest chunk as predicted; `mode="ensemble"`
returns, for every future step, the exponentially weighted mean of all chunks
that predicted it (ACT-style temporal ensembling; weight exp(-k * age)).

By default the policy is incremental: each step runs the backbone on the new
frame only and keeps what it can of the history (per-frame action-token
features for the policy-head structure, the KV cache for interleaved);
`incremental=False` re-runs the whole window every step, the reference the
incremental path is tested against.
"""

from __future__ import annotations

import collections
import logging
import os

import numpy as np
import torch

from . import bundle, guards
from .cast import as_dtype, on_device
from .errors import InputError, RuntimeConfigError
from .policy_io import ActionStatistics, Preprocessing, TokenLayout, history_mask, scale_pixels, to_model_frame
from .structures import PolicyModel
from .tokenizer import InstructionTokenizer

MODES = ("receding", "ensemble")
HOST = torch.device("cpu")
log = logging.getLogger("vla_runtime")


def _resolve_dtype(stored: str, device: str, dtype: str | None) -> torch.dtype:
    if dtype is not None:
        if dtype not in bundle.DTYPES:
            raise RuntimeConfigError(f"dtype {dtype!r} is unknown; use one of {tuple(bundle.DTYPES)}")
        return bundle.DTYPES[dtype]
    if stored in bundle.DTYPES:
        return bundle.DTYPES[stored]
    # int8 weights are dequantised at load: half precision on a GPU, float32 on a CPU (no fast fp16 there).
    return torch.float16 if str(device).startswith("cuda") else torch.float32


def pixel_statistics(pre: Preprocessing, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The preprocessing's mean and std as float32 [3, 1, 1] tensors on `device` (what `model_pixels` scales
    channels-first frames by)."""
    return (
        torch.tensor(pre.mean, dtype=torch.float32, device=device).reshape(3, 1, 1),
        torch.tensor(pre.std, dtype=torch.float32, device=device).reshape(3, 1, 1),
    )


def model_pixels(
    frames: torch.Tensor,
    pre: Preprocessing,
    dtype: torch.dtype = torch.float32,
    statistics: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> the backbone's input [..., 3, H, W] (policy_io.scale_pixels, channels first).

    `statistics`: `pixel_statistics(pre, frames.device)` made once (the robot step passes its own)."""
    mean, std = statistics if statistics is not None else pixel_statistics(pre, frames.device)
    # Channels first and contiguous before the arithmetic, the same values as scaling channels-last and moving the
    # axis after: scaling [..., H, W, 3] by a [3] vector runs loops 3 elements long (224 px: 480 against 280 us a
    # frame), and a channels-last view makes the patch convolution take oneDNN's channels-last path, which copies its
    # weight on every call (bench/RESULTS.md 4e session 13).
    return as_dtype(scale_pixels(frames.movedim(-1, -3).contiguous().float(), mean, std), dtype)


class Policy:
    def __init__(
        self,
        model: PolicyModel,
        tokenizer: InstructionTokenizer,
        preprocessing: Preprocessing,
        statistics: ActionStatistics,
        config: dict,
        device: str = "cpu",
        mode: str = "receding",
        incremental: bool = True,
        ensemble_decay: float = 0.01,
    ):
        if mode not in MODES:
            raise RuntimeConfigError(f"mode {mode!r} is unknown; use one of {MODES}")
        self.model, self.tokenizer, self.preprocessing = model, tokenizer, preprocessing
        self.statistics, self.config, self.device = statistics, config, torch.device(device)
        self.mode, self.incremental, self.ensemble_decay = mode, incremental, ensemble_decay
        self.window = int(config["policy"]["window_size"])
        self.action_chunk = int(config["policy"]["action_chunk"])
        self.instruction: str | None = None
        self.instruction_warning: str | None = None
        # Fixed for the policy's life, so a step does not rebuild them: the pixel scaling, the compute dtype.
        self._pixel_statistics = pixel_statistics(preprocessing, self.device)
        self._dtype = model.compute_dtype
        self._reset_state()

    # ------------------------------------------------------------------------------------------ load
    @classmethod
    def load(
        cls,
        export_dir: str,
        device: str = "cpu",
        dtype: str | None = None,
        mode: str = "receding",
        incremental: bool = True,
        ensemble_decay: float = 0.01,
        verify_files: bool = True,
        compile: str | None = None,
    ) -> Policy:
        """Reads and checks an export folder and builds the model.

        `compile`: None (eager, the default) or a `torch.compile` mode ("default", "reduce-overhead" = CUDA
        graphs on a GPU, unmeasured there) for the backbone's per-step calls (`compile_backbone`); loading then
        pays the compilation of every shape an episode makes.

        Checked: format version, sha256 of every file, that every weight is finite at the compute
        dtype, that the statistics are finite and ordered; each failure is one `RuntimeConfigError`.
        """
        config = bundle.read_config(export_dir, verify_files=verify_files)
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeConfigError("device='cuda' was asked for but torch sees no CUDA device; use device='cpu'")
        torch_dtype = _resolve_dtype(config["dtype"], device, dtype)
        # Built on the meta device and filled with the file's tensors (assign=True): peak memory is
        # the file, not a float32 model plus a second copy (6.8 GB each for the full-size policy).
        with torch.device("meta"):
            model = PolicyModel.from_config(config, dtype=torch_dtype)
        state = bundle.load_state_dict(export_dir, model.param_dtype_for(torch_dtype))
        model.assign_weights(state, os.path.join(export_dir, "model.safetensors"))
        del state
        model = model.to(device).eval()
        tokenizer = InstructionTokenizer(
            os.path.join(export_dir, "tokenizer.json"), TokenLayout.from_dict(config.get("tokenizer", {}))
        )
        pre = Preprocessing.from_dict(bundle.read_json(export_dir, "preprocessing.json"))
        stats = ActionStatistics.from_dict(
            bundle.read_json(export_dir, "statistics.json"), os.path.join(export_dir, "statistics.json")
        )
        policy = cls(model, tokenizer, pre, stats, config, device, mode, incremental, ensemble_decay)
        if compile is not None:
            policy.compile_backbone(compile)
        return policy

    def compile_backbone(self, mode: str = "default", backend: str = "inductor") -> None:
        """`torch.compile` of the backbone's per-step calls (`PolicyModel.compile_backbone`), compiled here, at
        load, rather than on the robot's first steps.

        The decoder's sequence length changes with the instruction's token count, the window's fill
        (interleaved) and the decoded action tokens (autoregressive discrete); dynamo makes such a length
        symbolic the first time it changes. So two dummy episodes with instructions of different lengths are
        stepped until the window has slid: afterwards an episode compiles nothing. Dynamo stops compiling a
        function after `recompile_limit` (8) shapes and then runs it eagerly without a word; here that is an error
        naming the limit. Outputs equal the eager ones within float32 rounding.
        """
        import torch._dynamo
        from torch._dynamo.exc import FailOnRecompileLimitHit

        self.model.compile_backbone(mode, backend)
        instruction = self.instruction
        frame = np.zeros((*self.preprocessing.image_size, 3), np.uint8)
        # capture_scalar_outputs: Qwen's vision attention splits its heads by `cu_seqlens.tolist()` inside the
        # layer loop; without it dynamo gives up on the whole tower (eager) and the step is slower than eager.
        with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True, capture_scalar_outputs=True):
            try:
                for text in ("go", "go go"):  # two token counts: the second makes the length symbolic
                    self.reset(text)
                    for _ in range(self.window + 1):  # the window fills, then slides
                        self.predict_normalized(frame)
            except FailOnRecompileLimitHit as e:
                raise RuntimeConfigError(
                    f"torch.compile reached dynamo's recompile_limit of "
                    f"{torch._dynamo.config.recompile_limit} shapes for one function of this policy ({e}); load "
                    "with compile=None, or raise torch._dynamo.config.recompile_limit first"
                ) from None
        if instruction is None:
            self.instruction = None
            self._reset_state()
        else:  # compiled mid-episode: that episode starts again
            self.reset(instruction)

    def fork(self) -> Policy:
        """A policy with its own episode state over the same weights (one per server connection)."""
        return Policy(
            self.model,
            self.tokenizer,
            self.preprocessing,
            self.statistics,
            self.config,
            str(self.device),
            self.mode,
            self.incremental,
            self.ensemble_decay,
        )

    def metadata(self) -> dict:
        p = self.config["policy"]
        return {
            "structure": p["structure"],
            "head": p["head"],
            "window_size": self.window,
            "action_chunk": self.action_chunk,
            "action_dim": self.statistics.action_dim,
            "image_size": list(self.preprocessing.image_size),
            "input_channel_order": self.preprocessing.input_channel_order,
            "dtype": self.config["dtype"],
            "normalization": self.statistics.mode,
            "gripper": None if self.statistics.gripper is None else str(self.statistics.gripper),
            "mode": self.mode,
            "incremental": self.incremental,
        }

    # ------------------------------------------------------------------------------------------ episode
    def _reset_state(self) -> None:
        self._frames: collections.deque[torch.Tensor] = collections.deque(maxlen=self.window)  # uint8 [H, W, 3]
        self._state = None  # the model's incremental state
        self._chunks: list[np.ndarray] = []  # past chunks (ensemble mode), newest last
        self.steps = 0

    def reset(self, instruction: str) -> None:
        """Starts an episode: clears the history and tokenizes the instruction.

        An instruction longer than the model's token budget is cut; `instruction_warning` then says
        what was kept (and it is logged), else it is None.
        """
        ids, mask = self.tokenizer(instruction)
        self.instruction_warning = self.tokenizer.truncation
        if self.instruction_warning:
            log.warning("%s", self.instruction_warning)
        self.instruction = instruction
        self._tokens = torch.from_numpy(ids)[None].to(self.device)
        self._token_mask = torch.from_numpy(mask)[None].to(self.device)
        self._reset_state()

    @torch.inference_mode()
    def predict_normalized(self, image: np.ndarray) -> np.ndarray:
        """One control step in model units: [C, A] (float64), gripper as a probability."""
        if self.instruction is None:
            raise InputError("call policy.reset(instruction) before policy.step(image)")
        frame = on_device(torch.from_numpy(to_model_frame(image, self.preprocessing)), self.device)
        self.steps += 1
        dtype = self._dtype
        self._frames.append(frame)  # the model inputs of the window (a reference each; what tests compare)
        if self.incremental:
            pixels = model_pixels(frame[None], self.preprocessing, dtype, self._pixel_statistics)
            self._state, out = self.model.step(self._state, pixels, self._tokens, self._token_mask)
        else:
            # policy_io's history rule on the device: zero frames (masked out) before the episode start.
            valid = torch.from_numpy(history_mask(len(self._frames), self.window)).to(self.device)
            frames = torch.stack(list(self._frames))  # [t, H, W, 3]
            frames = torch.cat([frames.new_zeros((self.window - len(frames), *frames.shape[1:])), frames])
            pixels = model_pixels(frames, self.preprocessing, dtype, self._pixel_statistics)[None]
            out = self.model.full(pixels, valid[None], self._tokens, self._token_mask)[:, -1]
        out = on_device(out[0], HOST)
        if out.dtype != torch.float32:  # the heads compute in float32; anything else is widened in torch
            out = out.double()
        return out.numpy().astype(np.float64, copy=False)  # float32 -> float64 is exact; numpy's cast is the cheaper

    def step(self, image: np.ndarray) -> np.ndarray:
        """Camera frame (uint8 H x W x 3, any size) -> action chunk [C, A] in robot units (float32).

        Never returns a non-finite value: raises `NonFiniteActionError` instead (stop the robot, then
        `reset`). The check runs before ensembling, so a bad chunk never enters the ensemble history.
        """
        norm = self.predict_normalized(image)
        n = self.statistics.action_dim
        if norm.shape[-1] < n:
            raise RuntimeConfigError(f"model predicts {norm.shape[-1]} action dims, statistics.json has {n}")
        chunk = self.statistics.denormalize(norm[:, :n])
        if self.mode == "ensemble":  # checked before it enters the history, where it would taint C-1 more steps
            chunk = self._ensemble(guards.finite_action(chunk, self.steps))
        # Checked as the robot gets it: after the cast, which turns a finite float64 beyond float32's range into inf.
        return guards.finite_action(chunk.astype(np.float32), self.steps)

    def _ensemble(self, chunk: np.ndarray) -> np.ndarray:
        """Row j = weighted mean of every stored chunk's prediction for time now + j (older = smaller weight)."""
        self._chunks.append(chunk)
        self._chunks = self._chunks[-self.action_chunk :]
        out = np.zeros_like(chunk)
        for j in range(self.action_chunk):
            preds, weights = [], []
            for age, past in enumerate(reversed(self._chunks)):  # age 0 = this step's chunk
                if age + j < self.action_chunk:
                    preds.append(past[age + j])
                    weights.append(np.exp(-self.ensemble_decay * age))
            w = np.asarray(weights)[:, None]
            out[j] = (np.asarray(preds) * w).sum(0) / w.sum()
        return out
