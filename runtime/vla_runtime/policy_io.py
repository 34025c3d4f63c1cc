"""Policy I/O: everything between a camera frame and the model, and between the model and the motors.

Defined once, with numpy only, and used by both sides: the episode converter and the training
loaders (vla_jax / data_pipelines), the exporter (which writes exactly these parameters into an
export), the JAX reference policy, `eval-offline`, `sim-eval`, and this runtime. Training and
serving therefore agree by construction, not by keeping copies in sync.

- Frames: `Preprocessing` (image size, resize mode, mean/std, channel orders) and
  `to_model_frame`: camera frame -> uint8 [H, W, 3] in the model's channel order, resized by
  `resize_frame` (antialiased bilinear, see there). Pixels are scaled on the accelerator by
  `scale_pixels`, whatever the framework.
- History: `pad_history`: the window holds `window_size` frames, oldest first; slots before the
  episode start are zero frames with `image_mask` false (what the training loaders produce).
- Tokens: `TokenLayout` and `layout_tokens`: ids right-padded with the pad id to
  `instruction_length`, with their mask; `from_dict` takes only real JSON integers (`strict_int`).
- Actions: `ActionStatistics` (normalise / de-normalise, one clipping rule) and the
  `normalize_actions` / `denormalize_actions` formulas it uses; `from_dict` refuses statistics that
  are not finite or not ordered (`check`), so no reader of a statistics file can act on NaN bounds.
- Gripper: `GripperConvention` (a dataset's own open/closed values, e.g. Meta-World's `[-1 open, +1 close]`,
  carried in statistics.json as `"gripper"`): `ActionStatistics.denormalize` maps the model's [0, 1]
  opening back to it, so `Policy.step` returns actions in the dataset's layout and convention;
  `gripper_to_signed` / `signed_to_gripper` between the [0, 1] opening and [-1, 1] (action bins).

Nothing here imports torch, JAX or TensorFlow.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InputError, RuntimeConfigError

CHANNEL_ORDERS = ("RGB", "BGR")
RESIZE_MODES = ("resize", "pad", "center_crop")  # stretch; keep aspect with black bars; keep aspect, crop
# Image statistics of the backbones' processors, in RGB order: CLIP's (Kosmos-2, the CLIP + Kosmos-2 hybrid)
# and SigLIP's (PaliGemma, SmolVLM). Each backbone config names its pair (vla_jax.models.backbone).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
NORMALIZATION_MODES = ("bounds", "bounds_q99", "normal", "none")
EPS = 1e-8  # guards a constant action dim (max == min, std == 0)


# ---------------------------------------------------------------------------------------------- frames
@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How a camera frame becomes the model's input; `preprocessing.json` of an export is `to_dict()`."""

    image_size: tuple[int, int]  # (H, W) the model sees
    resize_mode: str = "resize"
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    channel_order: str = "RGB"  # what the model was trained on
    input_channel_order: str = "RGB"  # what the camera delivers to Policy.step

    def __post_init__(self):
        check_choice("resize_mode", self.resize_mode, RESIZE_MODES, "preprocessing")
        for key in ("channel_order", "input_channel_order"):
            check_choice(key, getattr(self, key), CHANNEL_ORDERS, "preprocessing")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise RuntimeConfigError("preprocessing: 'mean' and 'std' need 3 values (one per channel)")

    @classmethod
    def from_dict(cls, d: dict, where: str = "preprocessing.json") -> Preprocessing:
        try:
            size = d["image_size"]
            size = (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))
            mean, std = (tuple(float(v) for v in d[k]) for k in ("mean", "std"))
            return cls(
                image_size=size,
                resize_mode=str(d["resize_mode"]),
                mean=mean,  # type: ignore[arg-type]  (length checked in __post_init__)
                std=std,  # type: ignore[arg-type]
                channel_order=str(d["channel_order"]),
                input_channel_order=str(d["input_channel_order"]),
            )
        except RuntimeConfigError as err:
            raise RuntimeConfigError(f"{where}: {err}") from None
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise RuntimeConfigError(f"{where}: malformed ({err!r}); re-export with vla-jax export.") from err

    def to_dict(self) -> dict:
        return {
            "image_size": list(self.image_size),
            "resize_mode": self.resize_mode,
            "mean": list(self.mean),
            "std": list(self.std),
            "channel_order": self.channel_order,
            "input_channel_order": self.input_channel_order,
        }


def check_choice(key: str, value: Any, choices: Sequence[str], where: str) -> None:
    if value not in choices:
        raise RuntimeConfigError(f"{where}: {key} {value!r} is unknown; use one of {', '.join(choices)}")


def strict_int(value: Any, where: str, key: str) -> int:
    """A JSON integer that really is one: ``true`` is not 1, ``"3"`` is not 3, ``1.5`` is not 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuntimeConfigError(f"{where}: {key!r} must be an integer, got {value!r}; re-export the folder")
    return value


def check_frame(image: Any) -> np.ndarray:
    """One clear error for anything that is not a uint8 H x W x 3 frame (torch tensors are accepted)."""
    if hasattr(image, "detach") and hasattr(image, "numpy"):  # a torch tensor, without importing torch
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy uint8 array of shape (H, W, 3), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputError(
            f"image dtype is {image.dtype}, expected uint8 (0..255); "
            "convert with (img * 255).clip(0, 255).astype(np.uint8) if it is float in [0, 1]"
        )
    if image.ndim != 3:
        raise InputError(f"image shape is {image.shape}, expected (H, W, 3): one frame, channels last")
    if image.shape[2] != 3:
        hint = " (drop alpha: img[..., :3])" if image.shape[2] == 4 else ""
        raise InputError(f"image has {image.shape[2]} channels (shape {image.shape}), expected 3{hint}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise InputError(f"image shape {image.shape} is too small to be a camera frame")
    return image


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def fit_geometry(height: int, width: int, out: tuple[int, int], mode: str):
    """(crop box (top, left, h, w) of the source, resized size (h, w), paste offset (top, left)) of a mode.

    Integer arithmetic on float64 products, so every implementation (this numpy one, the tf.data
    graph in data_pipelines.frame_transforms) computes the same boxes.
    """
    oh, ow = out
    if mode == "resize":
        return (0, 0, height, width), (oh, ow), (0, 0)
    if mode == "pad":
        scale = min(oh / height, ow / width)
        nh, nw = min(oh, max(1, _round_half_up(height * scale))), min(ow, max(1, _round_half_up(width * scale)))
        return (0, 0, height, width), (nh, nw), ((oh - nh) // 2, (ow - nw) // 2)
    if mode == "center_crop":
        scale = max(oh / height, ow / width)
        ch, cw = min(height, _round_half_up(oh / scale)), min(width, _round_half_up(ow / scale))
        return ((height - ch) // 2, (width - cw) // 2, ch, cw), (oh, ow), (0, 0)
    raise RuntimeConfigError(f"resize_mode {mode!r} is unknown; use one of {', '.join(RESIZE_MODES)}")


def _resize_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(source index [n_out, taps], weight [n_out, taps]) of the antialiased triangle filter along one axis."""
    scale = n_in / n_out
    support = max(scale, 1.0)  # downscaling widens the filter to cover every source pixel (antialiasing)
    centers = (np.arange(n_out, dtype=np.float64) + 0.5) * scale
    taps = int(math.ceil(support)) * 2 + 1
    first = np.floor(centers - support).astype(np.int64)
    index = first[:, None] + np.arange(taps)[None, :]
    weight = np.maximum(0.0, 1.0 - np.abs(index + 0.5 - centers[:, None]) / support)
    weight[(index < 0) | (index >= n_in)] = 0.0
    weight /= weight.sum(axis=1, keepdims=True)
    return np.clip(index, 0, n_in - 1), weight


# Bytes of output rows one block of `_resize_axis` works on: its output and tap buffers (2 x 128 KiB) stay in a
# core's L2 cache across the taps, where one pass per tap over a whole 224 x 640 x 3 float32 frame (1.7 MiB) went
# to memory and back five to seven times. 2**17 and 2**18 were the fastest of 2**14-2**21 on an Intel Xeon with
# 2 MiB of L2 a core (640x480 -> 224x224: 2.5 ms against 3.6 at 2**15 and 3.8 at 2**20); the smaller one, because a
# Jetson Orin's cores have 256 KiB of L2 (not measured there). bench/RESULTS.md 4e, session 14.
_RESIZE_BLOCK_BYTES = 1 << 17


@functools.lru_cache(maxsize=64)
def _resize_plan(
    n_in: int, n_out: int, inner: tuple[int, ...]
) -> tuple[np.ndarray, tuple[tuple[int, np.ndarray], ...]]:
    """(source index [n_out, taps], ((tap, float32 weights), ...) for each tap that is not zero for every output).

    Each tap's weights are shaped to broadcast over the axes after the resized one; when those hold only a few
    elements (a frame's 3 channels in the column pass) they are written out, so the multiply runs one long loop
    instead of one 3-element loop per pixel (149 against 42 us per tap at 224 x 224, Intel Xeon core). Cached: a
    robot's frames have one size. The arrays are read-only, being shared by every call.
    """
    index, weight = _resize_taps(n_in, n_out)
    index.flags.writeable = False
    size = math.prod(inner)
    taps = []
    for k in range(index.shape[1]):
        if not weight[:, k].any():
            continue
        w = weight[:, k].astype(np.float32).reshape((n_out,) + (1,) * len(inner))
        if size < 64:
            w = np.ascontiguousarray(np.broadcast_to(w, (n_out,) + inner))
        w.flags.writeable = False
        taps.append((k, w))
    return index, tuple(taps)


def _resize_axis(x: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    dims = x.shape[:axis] + (n_out,) + x.shape[axis + 1 :]
    index, taps = _resize_plan(x.shape[axis], n_out, dims[axis + 1 :])
    out = np.empty(dims, np.float32)
    rows = max(1, _RESIZE_BLOCK_BYTES // max(1, out[0].nbytes))
    tap_buffer = np.empty((min(rows, dims[0]),) + dims[1:], np.float32)
    # One tap at a time, a multiply and an add per element (no fused or reordered sums): IEEE float32 gives the
    # same bits on every platform, and 2.5x the speed of float64 for a 720x1280 frame. The first tap's product is
    # the sum's start: 0 + p is p for the non-negative products here. A uint8 source is cast exactly. A tap whose
    # weight is zero for every output adds +0.0 to sums of non-negative terms, so it is skipped (480 -> 224 rows:
    # 2 of 7 taps). The work runs a block of output rows at a time (`_RESIZE_BLOCK_BYTES`): every element's sum
    # is the same sequence of operations, in cache.
    for a in range(0, dims[0], rows):
        b = min(a + rows, dims[0])
        block, tap = out[a:b], tap_buffer[: b - a]
        source, tap_index = (x, index[a:b]) if axis == 0 else (x[a:b], index)
        for n, (k, weight) in enumerate(taps):
            if x.dtype == np.float32:
                np.take(source, tap_index[:, k], axis=axis, out=tap)
            else:
                np.copyto(tap, np.take(source, tap_index[:, k], axis=axis))
            w = weight[a:b] if axis == 0 else weight
            if n == 0:
                np.multiply(tap, w, out=block)
            else:
                np.multiply(tap, w, out=tap)
                block += tap
    return out


def resize_frame(image: np.ndarray, size: tuple[int, int], mode: str = "resize") -> np.ndarray:
    """uint8 [h, w, 3] -> uint8 [H, W, 3]: crop or pad per `mode`, antialiased bilinear, rounded.

    Bilinear with antialiasing (a triangle filter widened by the downscale factor, like
    tf.image.resize(antialias=True) and PIL's BILINEAR), rows then columns, in float32 with a
    fixed summation order, so the same frame gives the same bytes wherever it runs.
    """
    (top, left, ch, cw), (nh, nw), (pt, pl) = fit_geometry(image.shape[0], image.shape[1], size, mode)
    src = image[top : top + ch, left : left + cw]
    if (ch, cw) == (nh, nw):
        resized = src
    else:
        x = _resize_axis(src, 0, nh) if nh != ch else src.astype(np.float32)
        x = _resize_axis(x, 1, nw) if nw != cw else x
        resized = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if (nh, nw) == tuple(size):
        return np.ascontiguousarray(resized)
    out = np.zeros((size[0], size[1], image.shape[2]), np.uint8)
    out[pt : pt + nh, pl : pl + nw] = resized
    return out


def to_model_frame(image: Any, pre: Preprocessing) -> np.ndarray:
    """Camera frame (uint8 [h, w, 3], any size) -> uint8 [H, W, 3] in the model's channel order and size."""
    image = check_frame(image)
    if pre.input_channel_order != pre.channel_order:
        image = image[..., ::-1]
    return resize_frame(image, pre.image_size, pre.resize_mode)


def scale_pixels(frames: Any, mean: Any, std: Any) -> Any:
    """float frames in 0..255 (channels last) -> the backbone's input: (x / 255 - mean) / std.

    Written with operators only, so numpy, jax.numpy and torch arrays all go through this one line
    (pass `mean` / `std` as arrays of the same framework).
    """
    return (frames / 255.0 - mean) / std


# ---------------------------------------------------------------------------------------------- history
def history_mask(num_frames: int, window_size: int) -> np.ndarray:
    """bool [window_size]: false for the slots before the episode start (the oldest ones)."""
    return np.arange(window_size) >= window_size - min(num_frames, window_size)


def pad_history(frames: Sequence[np.ndarray], window_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The newest `window_size` frames, oldest first, zero frames before the episode start.

    -> (frames [window_size, H, W, 3], image_mask bool [window_size]).
    """
    frames = list(frames)[-window_size:]
    if not frames:
        raise InputError("pad_history needs at least one frame")
    padding = [np.zeros_like(frames[0])] * (window_size - len(frames))
    return np.stack(padding + frames), history_mask(len(frames), window_size)


# ---------------------------------------------------------------------------------------------- tokens
@dataclasses.dataclass(frozen=True)
class TokenLayout:
    """How instruction ids are laid out for the model; config.json's `tokenizer` block is `to_dict()`."""

    instruction_length: int  # L
    pad_id: int
    add_special_tokens: bool = True
    padding_side: str = "right"
    template: str = "{instruction}"

    @classmethod
    def from_dict(cls, d: dict, where: str = "config.json") -> TokenLayout:
        try:
            layout = cls(
                instruction_length=strict_int(d["instruction_length"], f"{where} tokenizer", "instruction_length"),
                pad_id=strict_int(d["pad_id"], f"{where} tokenizer", "pad_id"),
                add_special_tokens=bool(d.get("add_special_tokens", True)),
                padding_side=d.get("padding_side", "right"),
                template=d.get("template", "{instruction}"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise RuntimeConfigError(f"{where}: 'tokenizer' block is malformed ({err!r}); re-export") from err
        if layout.instruction_length < 1:
            raise RuntimeConfigError(
                f"{where}: tokenizer instruction_length {layout.instruction_length} must be >= 1; re-export"
            )
        check_choice("tokenizer padding_side", layout.padding_side, ("left", "right"), where)
        return layout

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def layout_tokens(ids: Sequence[int], layout: TokenLayout) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (already truncated by the tokenizer) -> (ids int64 [L], mask bool [L]), padded with pad_id."""
    ids = list(ids)
    length = layout.instruction_length
    if len(ids) > length:
        raise InputError(f"{len(ids)} instruction tokens exceed instruction_length={length}; truncate first")
    tokens = np.full((length,), layout.pad_id, np.int64)
    mask = np.zeros((length,), bool)
    where = slice(0, len(ids)) if layout.padding_side == "right" else slice(length - len(ids), length)
    tokens[where], mask[where] = ids, True
    return tokens, mask


# ---------------------------------------------------------------------------------------------- actions
def _low_high(stats: dict, mode: str, xp: Any = np) -> tuple[Any, Any]:
    keys = ("q01", "q99") if mode == "bounds_q99" else ("min", "max")
    return tuple(xp.asarray(stats[k]) for k in keys)  # type: ignore[return-value]


def normalize_actions(action: Any, stats: dict, mode: str, xp: Any = np) -> Any:
    """Robot units -> model units along the last axis (training targets).

    bounds / bounds_q99 map [min, max] / [q01, q99] to [-1, 1] and clip there; normal is
    (x - mean) / std; none passes through. Dims with mask false (a gripper in [0, 1]) are
    untouched. `stats` holds arrays in the dtype to compute in; `xp` is numpy or a numpy-like
    namespace (tf.experimental.numpy in the tf.data graph).
    """
    check_choice("normalization", mode, NORMALIZATION_MODES, "action statistics")
    if mode == "none":
        return action
    if mode == "normal":
        out = (action - stats["mean"]) / (stats["std"] + EPS)
    else:
        lo, hi = _low_high(stats, mode, xp)
        out = xp.clip(2.0 * (action - lo) / xp.maximum(hi - lo, EPS) - 1.0, -1.0, 1.0)
    return xp.where(xp.asarray(stats["mask"]), out, action)


def _clip(x: Any, lo: Any, hi: Any, xp: Any) -> Any:
    """`xp.clip(x, lo, hi)` for lo <= hi (what `ActionStatistics.check` ensures), NaN kept as NaN alike: numpy's
    `clip` goes through layers of Python before its ufunc, and each robot step runs this after the backbone has
    pushed that code out of the CPU's caches (measured in that position on an Intel Xeon core: 62 us for the
    denormalisation with `clip`, 41 us with these two ufuncs and the statistics read once)."""
    return xp.minimum(xp.maximum(x, lo), hi)


def denormalize_actions(action: Any, stats: dict, mode: str, xp: Any = np) -> Any:
    """Model units -> robot units, clipped to the range the training data covered (every mode).

    The one clipping rule: nothing leaves the policy outside [min, max] ([q01, q99] for
    bounds_q99), so a model can never command more than the robot was ever seen doing.
    """
    check_choice("normalization", mode, NORMALIZATION_MODES, "action statistics")
    lo, hi = _low_high(stats, mode, xp)
    if mode == "none":
        x = action
    elif mode == "normal":
        x = action * (stats["std"] + EPS) + stats["mean"]
    else:
        x = (_clip(action, -1.0, 1.0, xp) + 1.0) / 2.0 * xp.maximum(hi - lo, EPS) + lo
    return xp.where(xp.asarray(stats["mask"]), _clip(x, lo, hi, xp), action)


_GRIPPER_SIDE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s+(open|opened|close|closed)\s*$")
CANONICAL_GRIPPER_TEXT = "[0 closed, 1 open]"  # what every model predicts: an opening in [0, 1]


@dataclasses.dataclass(frozen=True)
class GripperConvention:
    """Which raw gripper value means fully open and which fully closed; values between are partial.

    Datasets state theirs as text (`"[-1 open, +1 close]"`, `"[0 closed, 1 open]"`); the data
    pipeline maps it to the canonical opening in [0, 1] for training (`to_canonical`) and the
    runtime maps the model's opening back (`from_canonical`).
    """

    open_value: float
    closed_value: float

    @classmethod
    def parse(cls, text: str, error: type[Exception] = RuntimeConfigError) -> GripperConvention:
        """`"[-1 open, +1 close]"` / `"[0 closed, 1 open]"` (either order, brackets optional); bad text -> `error`."""
        body = str(text).strip().removeprefix("[").removesuffix("]")
        sides = body.split(",")
        parsed = [_GRIPPER_SIDE.match(s) for s in sides]
        if len(sides) != 2 or not all(parsed):
            raise error(
                f"gripper convention {text!r}: write it as '[<value> open, <value> closed]', "
                "e.g. '[0 closed, 1 open]' or '[-1 open, +1 close]'"
            )
        values = {m.group(2).startswith("open"): float(m.group(1)) for m in parsed if m}
        if len(values) != 2 or values[True] == values[False]:
            raise error(f"gripper convention {text!r}: name one distinct value for open and one for closed")
        return cls(open_value=values[True], closed_value=values[False])

    def __str__(self) -> str:
        lo, hi = sorted([(self.open_value, "open"), (self.closed_value, "closed")])
        return f"[{lo[0]:g} {lo[1]}, {hi[0]:g} {hi[1]}]"

    @property
    def is_canonical(self) -> bool:
        return (self.open_value, self.closed_value) == (1.0, 0.0)

    def to_canonical(self, g: Any, xp: Any = np) -> Any:
        """Raw gripper values -> opening in [0, 1] (clipped: teleop overshoot is not 'more open')."""
        if self.is_canonical:
            return xp.clip(g, 0.0, 1.0)
        return xp.clip((g - self.closed_value) / (self.open_value - self.closed_value), 0.0, 1.0)

    def from_canonical(self, p: Any, xp: Any = np) -> Any:
        """Opening in [0, 1] (the model's output) -> the dataset's raw gripper command."""
        return self.closed_value + xp.clip(p, 0.0, 1.0) * (self.open_value - self.closed_value)


CANONICAL_GRIPPER = GripperConvention(open_value=1.0, closed_value=0.0)


@dataclasses.dataclass(frozen=True)
class ActionStatistics:
    """One dataset's action statistics and normalisation mode; `statistics.json` of an export is `to_dict()`.

    {"dataset": NAME, "normalization": "bounds" | "bounds_q99" | "normal" | "none",
     "action": {"mean": [A], "std": [A], "min": [A], "max": [A], "q01": [A], "q99": [A], "mask": [A]},
     "gripper": {"convention": "[-1 open, 1 closed]", "canonical": "[0 closed, 1 open]"}}   # optional

    With `"gripper"` the last dim is a gripper the model predicts as an opening in [0, 1] (the
    canonical convention) and `denormalize` returns it in the dataset's own convention. Without it
    (exports written before the key existed, datasets with no gripper) every unnormalised dim is
    passed through as the model predicts it.
    """

    mode: str
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    q01: np.ndarray
    q99: np.ndarray
    mask: np.ndarray  # bool [A]: false = never normalised (passed through both ways)
    dataset: str = ""
    gripper: GripperConvention | None = None  # the last dim's convention in the dataset (and on the robot)

    STAT_KEYS = ("mean", "std", "min", "max", "q01", "q99")

    @classmethod
    def from_dict(cls, d: dict, where: str = "statistics.json") -> ActionStatistics:
        mode = d.get("normalization")
        if mode not in NORMALIZATION_MODES:
            raise RuntimeConfigError(
                f"{where}: 'normalization' is {mode!r}; expected one of {NORMALIZATION_MODES}. Re-export with "
                "vla-jax export."
            )
        act = d.get("action")
        if not isinstance(act, dict):
            raise RuntimeConfigError(f"{where}: missing the 'action' statistics block; re-export with vla-jax export.")
        fields: dict[str, np.ndarray] = {}
        for key in cls.STAT_KEYS:
            if key not in act:
                raise RuntimeConfigError(f"{where}: action statistics lack {key!r}; re-export with vla-jax export.")
            fields[key] = np.asarray(act[key], dtype=np.float64)
        dims = {v.shape for v in fields.values()}
        if len(dims) != 1 or len(next(iter(dims))) != 1:
            raise RuntimeConfigError(f"{where}: action statistics must all be 1-D of the same length, got {dims}.")
        a = fields["mean"].shape[0]
        mask = np.asarray(act.get("mask", [True] * a), dtype=bool)
        if mask.shape != (a,):
            raise RuntimeConfigError(f"{where}: 'mask' has shape {mask.shape}, expected ({a},).")
        gripper = _gripper_from_dict(d.get("gripper"), mask, where)
        stats = cls(mode=mode, mask=mask, dataset=str(d.get("dataset", "")), gripper=gripper, **fields)
        stats.check(where)
        return stats

    def check(self, where: str = "statistics.json") -> None:
        """Finite and ordered (min <= max, q01 <= q99, std >= 0), else one `RuntimeConfigError` naming key and dim.

        NaN statistics would turn every action into NaN, and clipping to [min, max] does not stop NaN;
        masked dims are checked too (a NaN there would still be a NaN in some file a tool reads).
        """
        for key in self.STAT_KEYS:
            values = np.asarray(getattr(self, key), dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise RuntimeConfigError(
                    f"{where}: action {key}[{int(bad[0])}] is {values[bad[0]]}; statistics must be "
                    "finite: recompute them (vla-jax stats) and re-export"
                )
        for low, high in (("min", "max"), ("q01", "q99")):
            lo, hi = np.asarray(getattr(self, low)), np.asarray(getattr(self, high))
            wrong = np.flatnonzero(lo > hi)
            if wrong.size:
                i = int(wrong[0])
                raise RuntimeConfigError(
                    f"{where}: action {low}[{i}]={lo[i]:g} is above {high}[{i}]={hi[i]:g}; "
                    "recompute the statistics and re-export"
                )
        negative = np.flatnonzero(np.asarray(self.std) < 0)
        if negative.size:
            raise RuntimeConfigError(f"{where}: action std[{int(negative[0])}] is negative; recompute the statistics")

    def to_dict(self) -> dict:
        action = {k: np.asarray(getattr(self, k)).tolist() for k in (*self.STAT_KEYS, "mask")}
        out = {"dataset": self.dataset, "normalization": self.mode, "action": action}
        if self.gripper is not None:
            out["gripper"] = {"convention": str(self.gripper), "canonical": CANONICAL_GRIPPER_TEXT}
        return out

    @property
    def action_dim(self) -> int:
        return int(self.mean.shape[0])

    @functools.cached_property
    def _arrays(self) -> dict:
        """The statistics as `normalize_actions` takes them, made once (the robot step reads them every frame)."""
        return {k: getattr(self, k) for k in (*self.STAT_KEYS, "mask")}

    def normalize(self, action: Any) -> np.ndarray:
        """Robot units (the dataset's gripper convention) -> model units (training targets); float64 math."""
        action = np.asarray(action, dtype=np.float64)
        if self.gripper is not None:
            action = _map_last(action, self.gripper.to_canonical)
        return normalize_actions(action, self._arrays, self.mode)

    def denormalize(self, action: Any) -> np.ndarray:
        """Model units -> robot units: continuous dims clipped to the range seen in training, the gripper
        (when declared) mapped from the model's opening to the dataset's convention; other masked dims untouched."""
        action = np.asarray(action, dtype=np.float64)
        return self.dataset_gripper(denormalize_actions(action, self._arrays, self.mode))

    def dataset_gripper(self, action: Any) -> np.ndarray:
        """Actions whose last dim is the canonical opening -> the same with the dataset's gripper convention
        (identity without a declared gripper); e.g. the pipeline's canonical targets in `eval-offline`."""
        action = np.asarray(action, dtype=np.float64)
        return action if self.gripper is None else _map_last(action, self.gripper.from_canonical)


def _map_last(action: np.ndarray, fn) -> np.ndarray:
    out = np.array(action, dtype=np.float64, copy=True)
    out[..., -1] = fn(out[..., -1])
    return out


def _gripper_from_dict(block: Any, mask: np.ndarray, where: str) -> GripperConvention | None:
    """statistics.json's optional `"gripper"` block -> its convention (the last, unnormalised dim)."""
    if block is None:
        return None
    if not isinstance(block, dict) or not isinstance(block.get("convention"), str):
        raise RuntimeConfigError(
            f'{where}: \'gripper\' must be {{"convention": "[-1 open, 1 closed]", ...}}, got {block!r}; re-export'
        )
    canonical = block.get("canonical", CANONICAL_GRIPPER_TEXT)
    if GripperConvention.parse(canonical, RuntimeConfigError) != CANONICAL_GRIPPER:
        raise RuntimeConfigError(
            f"{where}: gripper 'canonical' is {canonical!r}; this runtime's models predict {CANONICAL_GRIPPER_TEXT}"
        )
    if bool(mask[-1]):
        raise RuntimeConfigError(
            f"{where}: a gripper is declared but the last action dim is normalised (mask true); "
            "recompute the statistics (vla-jax stats) and re-export"
        )
    try:
        return GripperConvention.parse(block["convention"], RuntimeConfigError)
    except RuntimeConfigError as err:
        raise RuntimeConfigError(f"{where}: {err}; fix the dataset's declared action space and re-export") from None


# ---------------------------------------------------------------------------------------------- gripper
def gripper_to_signed(g: Any) -> Any:
    """Gripper opening in [0, 1] (1 = open) -> [-1, 1], so it shares the arm dims' action bins."""
    return 2.0 * g - 1.0


def signed_to_gripper(s: Any) -> Any:
    return (s + 1.0) / 2.0
