"""Camera frame -> model input, exactly as training saw it.

`preprocessing.json` in an export:

    {"image_size": [H, W], "resize": "resize" | "center_crop" | "pad",
     "mean": [3], "std": [3], "channel_order": "RGB",        # what the model was trained on
     "input_channel_order": "RGB" | "BGR",                  # what the camera delivers
     "layout": "NCHW"}

Training stored frames as uint8 already resized and normalised them on device,
so here too the frame is resized, rounded back to uint8, then scaled by
1/255 and CLIP mean/std.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InputError, RuntimeConfigError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RESIZE_MODES = ("resize", "center_crop", "pad")


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    image_size: tuple[int, int]
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    resize: str = "resize"
    channel_order: str = "RGB"
    input_channel_order: str = "RGB"

    @classmethod
    def from_dict(cls, d: dict, where: str = "preprocessing.json") -> Preprocessing:
        try:
            size = d["image_size"]
            size = (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))
            p = cls(
                image_size=size,
                mean=tuple(float(v) for v in d.get("mean", CLIP_MEAN)),
                std=tuple(float(v) for v in d.get("std", CLIP_STD)),
                resize=d.get("resize", "resize"),
                channel_order=d.get("channel_order", "RGB"),
                input_channel_order=d.get("input_channel_order", "RGB"),
            )
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise RuntimeConfigError(f"{where}: malformed ({err!r}); re-export with vla-jax export.") from err
        if p.resize not in RESIZE_MODES:
            raise RuntimeConfigError(f"{where}: 'resize' is {p.resize!r}; expected one of {RESIZE_MODES}.")
        for key in ("channel_order", "input_channel_order"):
            if getattr(p, key) not in ("RGB", "BGR"):
                raise RuntimeConfigError(f"{where}: {key!r} must be 'RGB' or 'BGR', got {getattr(p, key)!r}.")
        if len(p.mean) != 3 or len(p.std) != 3:
            raise RuntimeConfigError(f"{where}: 'mean' and 'std' need 3 values (one per channel).")
        return p

    def to_dict(self) -> dict:
        return {
            "image_size": list(self.image_size),
            "resize": self.resize,
            "mean": list(self.mean),
            "std": list(self.std),
            "channel_order": self.channel_order,
            "input_channel_order": self.input_channel_order,
            "layout": "NCHW",
        }


def check_frame(image) -> np.ndarray:
    """One clear error for anything that is not a uint8 H x W x 3 frame."""
    if isinstance(image, torch.Tensor):
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


def _fit(x: torch.Tensor, size: Sequence[int], mode: str) -> torch.Tensor:
    """x float [1, 3, h, w] -> [1, 3, H, W] (bilinear with antialiasing, like tf.image.resize(antialias=True))."""
    h, w = x.shape[-2:]
    th, tw = size
    if mode == "center_crop":
        scale = max(th / h, tw / w)
        ch, cw = min(h, round(th / scale)), min(w, round(tw / scale))
        top, left = (h - ch) // 2, (w - cw) // 2
        x = x[..., top : top + ch, left : left + cw]
    elif mode == "pad":
        scale = min(th / h, tw / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        top, left = (th - nh) // 2, (tw - nw) // 2
        return F.pad(x, (left, tw - nw - left, top, th - nh - top))
    if tuple(x.shape[-2:]) == (th, tw):
        return x
    return F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False, antialias=True)


def to_uint8_model_frame(image: np.ndarray, p: Preprocessing) -> np.ndarray:
    """Camera frame -> uint8 [H, W, 3] in the model's channel order and size (what training stored)."""
    image = check_frame(image)
    if p.input_channel_order != p.channel_order:
        image = image[..., ::-1]  # a view; copied below
    if not image.flags.writeable or not image.flags.c_contiguous:  # e.g. np.frombuffer of a network message
        image = np.array(image, order="C")
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    x = _fit(x, p.image_size, p.resize)
    return x.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()


def normalize_uint8(frames: torch.Tensor, p: Preprocessing, dtype=torch.float32) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float NCHW-ordered [..., 3, H, W], scaled to [0, 1] then mean/std."""
    mean = torch.tensor(p.mean, dtype=torch.float32, device=frames.device)
    std = torch.tensor(p.std, dtype=torch.float32, device=frames.device)
    x = (frames.float() / 255.0 - mean) / std
    return x.movedim(-1, -3).to(dtype)
