"""Frame-level transforms: decode, resize, train-only augmentation, uint8 out.

Two runtimes, same semantics: TensorFlow ops for the RLDS `tf.data` graph, and
numpy/PIL for grain workers (no TensorFlow session per worker). Resizing is policy
I/O: grain workers call `vla_runtime.policy_io.resize_frame` itself, the tf.data
graph the equivalent `decode_and_resize_tf`. Images stay uint8 end to end;
normalisation to the backbone's mean/std happens on device.

Augmentation (train only): random resized crop (area `crop_scale`, aspect
`crop_ratio`, back to the output size), then brightness, contrast, saturation and
hue jitter - the set Octo/RoboVLMs use for manipulation data.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np
from PIL import Image

from vla_runtime.policy_io import RESIZE_MODES, check_choice


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    crop_scale: tuple[float, float] = (0.8, 1.0)
    crop_ratio: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.1  # additive, fraction of 255
    contrast: tuple[float, float] = (0.9, 1.1)
    saturation: tuple[float, float] = (0.9, 1.1)
    hue: float = 0.05  # fraction of a full turn

    @classmethod
    def from_dict(cls, d) -> AugmentConfig:
        d = dict(d or {})
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**fields)


# ---------------------------------------------------------------- TensorFlow (RLDS graph)
JPEG_RATIOS = (8, 4, 2)  # libjpeg's DCT scaling: decode straight at 1/8, 1/4 or 1/2 resolution


def decode_tf(contents, size: int, mode: str = "resize", jpeg_scaled: bool = False):
    """Encoded JPEG/PNG bytes -> uint8 [h, w, 3]; with `jpeg_scaled`, a JPEG decoded at the smallest DCT scale that
    still covers `size`.

    Decoding a 256 px frame for a 48 px model at 1/4 scale skips most of the inverse DCT
    work (about 2x faster here) and the result is then resized like any frame, so it
    differs from a full decode only by resampling noise (mean 1.6 / 255 at 256 -> 48 px).
    That noise is more than the one uint8 level the tf.data resize keeps to policy_io's (what
    the robot computes from a full frame), so it is opt-in (data config `jpeg_scaled_decode`).
    The scale keeps the side that sets the output size (the long side with "pad", else the
    short side) at >= `size`, so no frame is upsampled because of it.
    """
    import tensorflow as tf

    def full():
        return tf.io.decode_image(contents, channels=3, expand_animations=False)

    if not jpeg_scaled:
        return full()

    def jpeg():
        shape = tf.io.extract_jpeg_shape(contents)
        side = tf.reduce_max(shape[:2]) if mode == "pad" else tf.reduce_min(shape[:2])
        fits = [side // r >= size for r in JPEG_RATIOS]
        branch = tf.argmax(tf.stack(fits + [True]), output_type=tf.int32)  # first ratio that fits, else 1
        return tf.switch_case(
            branch, [lambda r=r: tf.io.decode_jpeg(contents, channels=3, ratio=r) for r in (*JPEG_RATIOS, 1)]
        )

    return tf.cond(tf.io.is_jpeg(contents), jpeg, full)


def decode_and_resize_tf(image, size: int, mode: str = "resize", jpeg_scaled: bool = False):
    """Encoded bytes or uint8 [H, W, 3] -> uint8 [size, size, 3], as vla_runtime.policy_io.resize_frame does.

    The crop / pad boxes follow policy_io.fit_geometry's integer formulas (float64 products, round half
    up), and the resize is tf.image.resize's antialiased bilinear, the same triangle filter as
    policy_io's numpy one: tests/test_policy_io.py measures the two within one uint8 level (a rounding
    tie resolved differently after float32 vs float64 sums), so the tf.data path keeps a graph op.
    """
    import tensorflow as tf

    check_choice("resize_mode", mode, RESIZE_MODES, "data config")
    if image.dtype == tf.string:
        image = decode_tf(image, size, mode, jpeg_scaled)
    shape = tf.shape(image)
    h, w = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    out = tf.constant(float(size), tf.float64)

    def half_up(x):
        return tf.cast(tf.floor(x + 0.5), tf.int32)

    if mode == "center_crop":
        scale = tf.maximum(out / h, out / w)
        ch, cw = tf.minimum(shape[0], half_up(out / scale)), tf.minimum(shape[1], half_up(out / scale))
        top, left = (shape[0] - ch) // 2, (shape[1] - cw) // 2
        image = image[top : top + ch, left : left + cw]
    x = tf.cast(image, tf.float32)
    if mode == "pad":
        scale = tf.minimum(out / h, out / w)
        nh = tf.clip_by_value(half_up(h * scale), 1, size)
        nw = tf.clip_by_value(half_up(w * scale), 1, size)
        x = tf.image.resize(x, tf.stack([nh, nw]), method="bilinear", antialias=True)
        top, left = (size - nh) // 2, (size - nw) // 2
        x = tf.pad(x, [[top, size - nh - top], [left, size - nw - left], [0, 0]])  # pyright: ignore[reportArgumentType]
        x = tf.reshape(x, [size, size, 3])
    else:
        x = tf.image.resize(x, (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)


def augment_tf(image, seed, cfg: AugmentConfig = AugmentConfig()):
    """uint8 [..., H, W, 3] -> augmented uint8, same shape; `seed` is a stateless [2] int seed.

    A whole history window shares one crop/colour draw so motion between frames
    is not confounded with augmentation noise.
    """
    import tensorflow as tf

    shape = tf.shape(image)
    h, w = shape[-3], shape[-2]
    x = tf.cast(image, tf.float32) / 255.0
    seeds = tf.random.experimental.stateless_split(seed, 6)  # pyright: ignore[reportAttributeAccessIssue]
    area = tf.random.stateless_uniform([], seeds[0], *cfg.crop_scale)
    ratio = tf.random.stateless_uniform([], seeds[1], *cfg.crop_ratio)
    ch = tf.clip_by_value(tf.sqrt(area / ratio), 0.0, 1.0)
    cw = tf.clip_by_value(tf.sqrt(area * ratio), 0.0, 1.0)
    offset = tf.random.stateless_uniform([2], seeds[2]) * tf.stack([1.0 - ch, 1.0 - cw])
    box = tf.stack([offset[0], offset[1], offset[0] + ch, offset[1] + cw])
    flat = tf.reshape(x, tf.concat([[-1], shape[-3:]], 0))
    n = tf.shape(flat)[0]
    flat = tf.image.crop_and_resize(flat, tf.tile(box[None], tf.stack([n, 1])), tf.range(n), tf.stack([h, w]))
    flat = tf.image.stateless_random_brightness(flat, cfg.brightness, seeds[3])
    flat = tf.image.stateless_random_contrast(flat, *cfg.contrast, seeds[4])
    sub = tf.random.experimental.stateless_split(seeds[5], 2)  # pyright: ignore[reportAttributeAccessIssue]
    flat = tf.image.stateless_random_saturation(flat, *cfg.saturation, sub[0])
    flat = tf.image.stateless_random_hue(flat, cfg.hue, sub[1])
    out = tf.reshape(flat, shape)
    return tf.cast(tf.clip_by_value(tf.round(out * 255.0), 0, 255), tf.uint8)


# ---------------------------------------------------------------- numpy / PIL (grain workers)
def decode_np(data) -> np.ndarray:
    """Encoded image bytes (JPEG/PNG) or an array -> uint8 [H, W, 3]."""
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 3:
        return data
    with Image.open(io.BytesIO(bytes(data))) as img:
        return np.asarray(img.convert("RGB"))


def augment_np(frames: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """uint8 [T, H, W, 3] -> augmented uint8 [T, H, W, 3]; one draw shared by the window."""
    t, h, w, _ = frames.shape
    area = rng.uniform(*cfg.crop_scale)
    ratio = rng.uniform(*cfg.crop_ratio)
    ch, cw = min(1.0, np.sqrt(area / ratio)), min(1.0, np.sqrt(area * ratio))
    top, left = rng.uniform(0, 1 - ch) * h, rng.uniform(0, 1 - cw) * w
    box = (left, top, left + cw * w, top + ch * h)
    brightness = rng.uniform(-cfg.brightness, cfg.brightness) * 255.0
    contrast, saturation = rng.uniform(*cfg.contrast), rng.uniform(*cfg.saturation)
    hue = int(round(rng.uniform(-cfg.hue, cfg.hue) * 256))
    cropped = np.stack(
        [np.asarray(Image.fromarray(f).resize((w, h), Image.Resampling.BILINEAR, box=box)) for f in frames]
    )
    x = cropped.astype(np.float32) + brightness
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = np.clip(np.round((x - mean) * contrast + mean), 0, 255).astype(np.uint8)
    out = np.empty_like(frames)
    for i in range(t):  # saturation and hue in one HSV round trip per frame
        hsv = np.asarray(Image.fromarray(x[i]).convert("HSV")).astype(np.int16)
        hsv[..., 0] = (hsv[..., 0] + hue) % 256
        hsv[..., 1] = np.clip(np.round(hsv[..., 1] * saturation), 0, 255)
        out[i] = np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"))
    return out
