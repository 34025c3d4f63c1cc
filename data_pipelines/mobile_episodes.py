"""Reader for the users' HDF5 mobile-robot episodes (see docs/mobile_episodes.md).

The files are accepted exactly as the ROS 2 collector writes them: BGR frames
(configurable), `[linear_x, linear_y, angular_z]` key-press actions, event types,
an optional `language_instruction`, and attributes that may be missing. Every
problem becomes one `DataError` naming the file, the episode and the key, because
a silent fallback here is what turns into a robot driving the wrong way.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from data_pipelines.errors import DataError
from vla_runtime.policy_io import resize_frame

EVENT_TYPES = ("episode_start", "start_action", "stop_action")
# Lateral (linear_y) and angular (angular_z) velocities change sign under a left-right mirror.
MIRROR_SIGN = np.array([1.0, -1.0, -1.0], np.float32)
DEFAULT_INSTRUCTION = "Navigate around the obstacle on the {side} side and reach the target"
_NAME_RE = re.compile(r"episode_(?P<stamp>\d{8}_\d{6})(?P<rest>.*)\.h5$")


@dataclasses.dataclass
class MobileEpisode:
    path: str
    name: str
    images: np.ndarray  # uint8 [T, H, W, 3], RGB
    actions: np.ndarray  # float32 [T, action_dim]
    event_types: list[str]
    instruction: str
    attrs: dict

    def __len__(self) -> int:
        return int(self.actions.shape[0])


def parse_filename(path: str) -> dict:
    """Tokens of `episode_{stamp}_{1box|2box}_{hori|vert}_{left|right}_{core|variant}_{dist}.h5`.

    Older files lack some tokens, so each token is recognised by its vocabulary,
    not by its position.
    """
    base = os.path.basename(path)
    m = _NAME_RE.match(base)
    out: dict = {"timestamp": m.group("stamp") if m else None}
    tokens = m.group("rest").strip("_").split("_") if m else base[:-3].split("_")
    vocab = {
        "boxes": ("1box", "2box"),
        "orientation": ("hori", "vert"),
        "side": ("left", "right"),
        "variant": ("core", "variant"),
        "distance": ("close", "medium", "far"),
    }
    for key, words in vocab.items():
        out[key] = next((t for t in tokens if t in words), None)
    return out


def instruction_from_filename(path: str, template: str = DEFAULT_INSTRUCTION) -> str:
    side = parse_filename(path)["side"]
    if side is None:
        raise DataError(
            f"{path}: no `language_instruction` dataset and no left/right token in the filename; "
            "add the instruction to the file (h5py: f['language_instruction'] = [b'...']) or rename it "
            "to episode_YYYYMMDD_HHMMSS_..._{left|right}_....h5"
        )
    return template.format(side=side)


def mirror_instruction(text: str) -> str:
    """Swap left/right (keeping capitalisation) so the mirrored frame and the words agree."""

    def swap(m: re.Match) -> str:
        word = m.group(0)
        new = {"left": "right", "right": "left"}[word.lower()]
        if word.isupper():
            return new.upper()
        return new.capitalize() if word[0].isupper() else new

    return re.sub(r"\b(left|right)\b", swap, text, flags=re.IGNORECASE)


def mirror_frame(image: np.ndarray, action: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Left-right mirror of one sample: flip width, negate lateral/angular velocity, swap words.

    `image` is [..., H, W, 3]; `action` is [..., A] with A in {2, 3}.
    """
    action = np.asarray(action)
    sign = MIRROR_SIGN[: action.shape[-1]].astype(action.dtype)
    return np.ascontiguousarray(image[..., ::-1, :]), action * sign, mirror_instruction(text)


def chronological_key(path: str) -> tuple:
    stamp = parse_filename(path)["timestamp"]
    return (stamp is None, stamp or "", os.path.basename(path))


def list_episodes(src: str) -> list[str]:
    """All `*.h5` files of a folder in chronological (filename timestamp) order."""
    if not os.path.isdir(src):
        raise DataError(f"{src}: episode folder does not exist; pass --src a folder of episode_*.h5 files")
    paths = [os.path.join(src, f) for f in os.listdir(src) if f.endswith((".h5", ".hdf5"))]
    if not paths:
        raise DataError(f"{src}: no .h5 episode files found; pass --src the folder the collector wrote")
    return sorted(paths, key=chronological_key)


def split_train_val(paths: Sequence[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """Chronological split by episode: the newest `val_fraction` of episodes is validation.

    Splitting by episode (never by frame) keeps near-duplicate neighbouring frames
    out of both sides; splitting by time mimics deployment on later days.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction={val_fraction}: must be in [0, 1)")
    paths = sorted(paths, key=chronological_key)
    n_val = int(round(len(paths) * val_fraction))
    if val_fraction > 0 and n_val == 0 and len(paths) > 1:
        n_val = 1
    n_train = len(paths) - n_val
    return list(paths[:n_train]), list(paths[n_train:])


def _decode_strings(values, path: str, key: str) -> list[str]:
    out = []
    for v in np.asarray(values).reshape(-1):
        if isinstance(v, bytes):
            try:
                v = v.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}: episode {os.path.basename(path)}: key `{key}` is not UTF-8 ({err})") from err
        out.append(str(v).rstrip("\x00").strip())
    return out


def read_episode(
    path: str,
    *,
    channel_order: str = "BGR",
    action_dim: int = 3,
    min_length: int = 2,
    image_size: int | None = None,
    resize_mode: str = "resize",
    load_images: bool = True,
) -> MobileEpisode:
    """Read and validate one episode file; raise `DataError` naming file, episode and key.

    image_size: if given, frames are resized to image_size x image_size while reading (policy I/O:
    vla_runtime.policy_io.resize_frame with `resize_mode`, exactly what the robot will do), so a
    500-episode folder never sits in RAM at 720x1280.
    load_images=False validates everything but the pixels (fast pre-scan); the
    returned `images` is then an empty [T, 0, 0, 3] placeholder.
    """
    name = os.path.basename(path)
    where = f"{path}: episode {name}"
    channel_order = str(channel_order).upper()
    if channel_order not in ("BGR", "RGB"):
        raise DataError(f"channel_order={channel_order!r}: must be 'BGR' (collector default) or 'RGB'")
    if action_dim not in (2, 3):
        raise DataError(f"action_dim={action_dim}: must be 2 (linear_x, linear_y) or 3 (+ angular_z)")
    try:
        f: Any = h5py.File(path, "r")  # datasets or groups by key: checked below
    except (OSError, ValueError) as err:
        raise DataError(f"{where}: cannot open HDF5 file (truncated or corrupt?): {err}; re-copy or delete it") from err
    with f:
        for key in ("images", "actions"):
            if key not in f:
                raise DataError(
                    f"{where}: missing key `{key}` (found {sorted(f.keys())}); the collector writes "
                    "`images` uint8 (T,H,W,3) and `actions` float32 (T,3)"
                )
        try:
            actions = np.asarray(f["actions"][()])
            images_ds = f["images"]
            if images_ds.ndim != 4 or images_ds.shape[-1] != 3:
                raise DataError(f"{where}: key `images` has shape {images_ds.shape}; expected (T, H, W, 3)")
            if images_ds.dtype != np.uint8:
                raise DataError(f"{where}: key `images` has dtype {images_ds.dtype}; expected uint8")
            try:
                images = (
                    _read_images(images_ds, image_size, resize_mode)
                    if load_images
                    else np.zeros((images_ds.shape[0], 0, 0, 3), np.uint8)
                )
            except (OSError, ValueError) as err:  # a damaged compressed chunk passes the pixel-free pre-scan
                raise DataError(
                    f"{where}: key `images` cannot be decoded (corrupt pixel data: {err}); re-copy or delete the file"
                ) from err
            events = (
                _decode_strings(f["action_event_types"][()], path, "action_event_types")
                if "action_event_types" in f
                else None
            )
            instruction = None
            if "language_instruction" in f:
                texts = _decode_strings(f["language_instruction"][()], path, "language_instruction")
                instruction = texts[0] if texts and texts[0] else None
            attrs = {}
            for k, v in f.attrs.items():
                v = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                attrs[k] = v.item() if isinstance(v, np.generic) else (v.tolist() if isinstance(v, np.ndarray) else v)
        except DataError:
            raise
        except (OSError, RuntimeError, ValueError, KeyError) as err:
            raise DataError(
                f"{where}: cannot read data (truncated or corrupt HDF5?): {err}; re-copy or delete it"
            ) from err

    if actions.ndim != 2 or actions.shape[1] < action_dim:
        raise DataError(
            f"{where}: key `actions` has shape {actions.shape}; expected (T, 3) "
            f"[linear_x, linear_y, angular_z] (need >= {action_dim} columns)"
        )
    if not np.issubdtype(actions.dtype, np.floating):
        raise DataError(f"{where}: key `actions` has dtype {actions.dtype}; expected float32")
    actions = actions[:, :action_dim].astype(np.float32)
    if len(actions) == 0:
        raise DataError(f"{where}: key `actions` is empty (0 frames); delete the file or re-record the episode")
    if len(actions) < min_length:
        raise DataError(
            f"{where}: key `actions` has {len(actions)} frames, fewer than min_length={min_length}; "
            "delete the file or lower min_length"
        )
    bad = ~np.isfinite(actions)
    if bad.any():
        t, d = map(int, np.argwhere(bad)[0])
        raise DataError(
            f"{where}: key `actions` has {int(bad.sum())} NaN/inf values (first at frame {t}, dim {d}); "
            "fix or delete the file, or set skip_bad_episodes=True"
        )
    if images.shape[0] != actions.shape[0]:
        raise DataError(
            f"{where}: key `images` has {images.shape[0]} frames but `actions` has {actions.shape[0]}; "
            "the episode is truncated - re-copy or delete it"
        )
    if events is None:
        events = ["episode_start"] + ["start_action"] * (len(actions) - 1)
    if len(events) != len(actions):
        raise DataError(
            f"{where}: key `action_event_types` has {len(events)} entries but `actions` has "
            f"{len(actions)} frames; re-copy or delete the file"
        )
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise DataError(f"{where}: key `action_event_types` has unknown values {unknown}; expected {EVENT_TYPES}")
    if channel_order == "BGR":
        images = images[..., ::-1]
    if instruction is None:
        instruction = instruction_from_filename(path)
    return MobileEpisode(
        path=path,
        name=str(attrs.get("episode_name", name[:-3])),
        images=np.ascontiguousarray(images),
        actions=actions,
        event_types=events,
        instruction=instruction,
        attrs=attrs,
    )


def _read_images(ds, image_size: int | None, resize_mode: str) -> np.ndarray:
    if image_size is None:
        return np.asarray(ds[()])
    out = np.empty((ds.shape[0], image_size, image_size, 3), np.uint8)
    for t in range(ds.shape[0]):  # frame by frame: peak RAM is one full-resolution frame
        out[t] = resize_frame(np.asarray(ds[t]), (image_size, image_size), resize_mode)
    return out
