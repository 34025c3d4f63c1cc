"""Frame-level transforms: decode, resize (optionally padded), train-only augmentation, uint8 out.

Two runtimes, same semantics: TensorFlow ops for the RLDS `tf.data` graph, and
numpy/PIL for grain workers (no TensorFlow session per worker). Images stay
uint8 end to end; normalisation to the backbone's mean/std happens on device.

Augmentation (train only): random resized crop (area `crop_scale`, aspect
`crop_ratio`, back to the output size), then brightness, contrast, saturation and
hue jitter - the set Octo/RoboVLMs use for manipulation data.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np


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
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# ---------------------------------------------------------------- TensorFlow (RLDS graph)
JPEG_RATIOS = (8, 4, 2)  # libjpeg's DCT scaling: decode straight at 1/8, 1/4 or 1/2 resolution


def decode_tf(contents, size: int, pad: bool = False):
    """Encoded JPEG/PNG bytes -> uint8 [h, w, 3], a JPEG decoded at the smallest DCT scale that still covers `size`.

    Decoding a 256 px frame for a 48 px model at 1/4 scale skips most of the inverse DCT
    work (about 2x faster here) and the result is then resized like any frame, so it
    differs from a full decode only by resampling noise (mean 1.6 / 255 at 256 -> 48 px).
    The scale keeps the side that sets the output size (short side when stretching, long
    side with `pad`) at >= `size`, so no frame is upsampled because of it.
    """
    import tensorflow as tf

    def jpeg():
        shape = tf.io.extract_jpeg_shape(contents)
        side = tf.reduce_max(shape[:2]) if pad else tf.reduce_min(shape[:2])
        fits = [side // r >= size for r in JPEG_RATIOS]
        branch = tf.argmax(tf.stack(fits + [True]), output_type=tf.int32)  # first ratio that fits, else 1
        return tf.switch_case(
            branch, [lambda r=r: tf.io.decode_jpeg(contents, channels=3, ratio=r) for r in (*JPEG_RATIOS, 1)]
        )

    def other():
        return tf.io.decode_image(contents, channels=3, expand_animations=False)

    return tf.cond(tf.io.is_jpeg(contents), jpeg, other)


def decode_and_resize_tf(image, size: int, pad: bool = False):
    """Encoded bytes or uint8 [H, W, 3] -> uint8 [size, size, 3]; `pad` keeps the aspect ratio."""
    import tensorflow as tf

    if image.dtype == tf.string:
        image = decode_tf(image, size, pad)
    image = tf.cast(image, tf.float32)
    if pad:
        image = tf.image.resize_with_pad(image, size, size)
    else:
        image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def augment_tf(image, seed, cfg: AugmentConfig = AugmentConfig()):
    """uint8 [..., H, W, 3] -> augmented uint8, same shape; `seed` is a stateless [2] int seed.

    A whole history window shares one crop/colour draw so motion between frames
    is not confounded with augmentation noise.
    """
    import tensorflow as tf

    shape = tf.shape(image)
    h, w = shape[-3], shape[-2]
    x = tf.cast(image, tf.float32) / 255.0
    seeds = tf.random.experimental.stateless_split(seed, 6)
    area = tf.random.stateless_uniform([], seeds[0], *cfg.crop_scale)
    ratio = tf.random.stateless_uniform([], seeds[1], *cfg.crop_ratio)
    ch = tf.clip_by_value(tf.sqrt(area / ratio), 0.0, 1.0)
    cw = tf.clip_by_value(tf.sqrt(area * ratio), 0.0, 1.0)
    offset = tf.random.stateless_uniform([2], seeds[2]) * tf.stack([1.0 - ch, 1.0 - cw])
    box = tf.stack([offset[0], offset[1], offset[0] + ch, offset[1] + cw])
    flat = tf.reshape(x, tf.concat([[-1], shape[-3:]], 0))
    n = tf.shape(flat)[0]
    flat = tf.image.crop_and_resize(flat, tf.tile(box[None], [n, 1]), tf.range(n), tf.stack([h, w]))
    flat = tf.image.stateless_random_brightness(flat, cfg.brightness, seeds[3])
    flat = tf.image.stateless_random_contrast(flat, *cfg.contrast, seeds[4])
    sub = tf.random.experimental.stateless_split(seeds[5], 2)
    flat = tf.image.stateless_random_saturation(flat, *cfg.saturation, sub[0])
    flat = tf.image.stateless_random_hue(flat, cfg.hue, sub[1])
    out = tf.reshape(flat, shape)
    return tf.cast(tf.clip_by_value(tf.round(out * 255.0), 0, 255), tf.uint8)


# ---------------------------------------------------------------- numpy / PIL (grain workers)
def decode_np(data) -> np.ndarray:
    """Encoded image bytes (JPEG/PNG) or an array -> uint8 [H, W, 3]."""
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 3:
        return data
    from PIL import Image

    with Image.open(io.BytesIO(bytes(data))) as img:
        return np.asarray(img.convert("RGB"))


def resize_np(image: np.ndarray, size: int, pad: bool = False) -> np.ndarray:
    from PIL import Image, ImageOps

    if image.shape[:2] == (size, size):
        return image
    img = Image.fromarray(image)
    if pad:
        return np.asarray(ImageOps.pad(img, (size, size), Image.BILINEAR, color=(0, 0, 0)))
    return np.asarray(img.resize((size, size), Image.BILINEAR))


def augment_np(frames: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """uint8 [T, H, W, 3] -> augmented uint8 [T, H, W, 3]; one draw shared by the window."""
    from PIL import Image

    t, h, w, _ = frames.shape
    area = rng.uniform(*cfg.crop_scale)
    ratio = rng.uniform(*cfg.crop_ratio)
    ch, cw = min(1.0, np.sqrt(area / ratio)), min(1.0, np.sqrt(area * ratio))
    top, left = rng.uniform(0, 1 - ch) * h, rng.uniform(0, 1 - cw) * w
    box = (left, top, left + cw * w, top + ch * h)
    brightness = rng.uniform(-cfg.brightness, cfg.brightness) * 255.0
    contrast, saturation = rng.uniform(*cfg.contrast), rng.uniform(*cfg.saturation)
    hue = int(round(rng.uniform(-cfg.hue, cfg.hue) * 256))
    cropped = np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.BILINEAR, box=box)) for f in frames])
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
