"""A folder of per-episode `.npz` files -> our RLDS dataset, through the generic writer (`rlds_writer`).

One file per episode (`np.savez(path, image=..., action=..., instruction=...)`), read in file-name order:

    image         uint8 [T, H, W, 3]   RGB frames (any size: resized to --image-size with policy_io's resize)
    action        float [T, A]         the robot's action per step, in its own units and layout
    state         float [T, S]         optional proprioception (stored as observation/state)
    instruction   str                  one string (or T strings); or pass a fixed --instruction

Every file must have the same A (and S). Written per step: steps/observation/image (and state),
steps/action (float32), steps/language_instruction; per episode: episode_metadata/file and resize_mode.
The newest `val_fraction` of files (by name) form the `val` split, the rest `train`; both are listed
in the command's output. Declare the dataset's action space (which dims are continuous, the gripper
and its convention) in a registry file: see docs/bring_your_own_dataset.md.
"""

from __future__ import annotations

import functools
import os
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_pipelines import rlds_writer as rw
from data_pipelines.errors import BadDataCounter, DataError
from vla_runtime.policy_io import resize_frame

DEFAULT_NAME = "npz_episodes"


def episode_files(src: str) -> list[Path]:
    folder = Path(src)
    if not folder.is_dir():
        raise DataError(f"--src {src}: not a folder; pass the folder holding one .npz file per episode")
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise DataError(f"--src {src}: no *.npz files; save one episode per file with np.savez(image=, action=, ...)")
    return files


def _array(data, path: Path, key: str, flag: str) -> np.ndarray:
    if key not in data.files:
        raise DataError(f"{path}: no key `{key}` (has {sorted(data.files)}); save it under that name or pass {flag}")
    try:
        return data[key]
    except ValueError as err:  # object arrays need pickle, which is refused
        raise DataError(f"{path}: key `{key}` is an object array ({err}); save numbers or np.str_ strings") from None


def _instruction(value: np.ndarray, n: int, path: Path, key: str) -> str | list[str]:
    if value.dtype.kind not in "US":
        raise DataError(f"{path}: key `{key}` has dtype {value.dtype}, expected a string (or one per step)")
    texts = [t.decode() if isinstance(t, bytes) else str(t) for t in value.reshape(-1).tolist()]
    if value.ndim == 0:
        return texts[0]
    if len(texts) != n:
        raise DataError(f"{path}: key `{key}` has {len(texts)} strings for {n} steps; save one string or one per step")
    return texts


def read_episode(
    path: Path,
    *,
    image_key: str = "image",
    action_key: str = "action",
    state_key: str | None = "auto",
    instruction_key: str = "instruction",
    instruction: str | None = None,
    min_length: int = 1,
) -> dict:
    """One `.npz` -> {image, action, state?, instruction}, checked (shapes, dtypes, lengths, finite).

    `state_key`: "auto" = `state` when the file has it; a name = that key, which must be there; None = no state.
    """
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a readable .npz file ({err}); write it with np.savez") from None
    with data:
        image = _array(data, path, image_key, "--image-key")
        action = _array(data, path, action_key, "--action-key")
        if state_key == "auto":
            state_key = "state" if "state" in data.files else None
        state = _array(data, path, state_key, "--state-key") if state_key else None
        text = data[instruction_key] if instruction_key in data.files else None
    if image.dtype != np.uint8 or image.ndim != 4 or image.shape[-1] != 3:
        raise DataError(
            f"{path}: key `{image_key}` has dtype {image.dtype} and shape {image.shape}; expected uint8 [T, H, W, 3] "
            "(RGB; convert float frames with (x * 255).clip(0, 255).astype(np.uint8))"
        )
    n = image.shape[0]
    for key, arr in ((action_key, action), (state_key, state)):
        if arr is None:
            continue
        if arr.ndim != 2 or arr.dtype.kind not in "fiu":
            raise DataError(f"{path}: key `{key}` has dtype {arr.dtype} and shape {arr.shape}; expected numbers [T, D]")
        if arr.shape[0] != n:
            raise DataError(
                f"{path}: key `{key}` has {arr.shape[0]} steps but `{image_key}` has {n}; save one row per frame"
            )
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{path}: key `{key}` has NaN/inf values; fix the source data")
    if n < min_length:
        raise DataError(f"{path}: {n} steps, fewer than --min-length {min_length}")
    if text is None and instruction is None:
        raise DataError(f"{path}: no key `{instruction_key}`; save the instruction there or pass --instruction TEXT")
    episode = {
        "image": image,
        "action": action.astype(np.float32),
        "instruction": instruction if text is None else _instruction(text, n, path, instruction_key),
    }
    if state is not None:
        episode["state"] = state.astype(np.float32)
    return episode


def convert(
    src: str,
    out: str,
    *,
    name: str = DEFAULT_NAME,
    image_size: int = 224,
    resize_mode: str = "resize",
    val_fraction: float = 0.0,
    image_key: str = "image",
    action_key: str = "action",
    state_key: str | None = "auto",
    instruction_key: str = "instruction",
    instruction: str | None = None,
    encoding: str = "jpeg",
    min_length: int = 1,
    skip_bad_episodes: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[str, BadDataCounter, dict]:
    """Convert; returns (dataset folder, bad-episode counter, {split: file count})."""
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"--val-fraction {val_fraction}: choose a value in [0, 1)")
    files = episode_files(src)
    rw.check_target(out, name, overwrite)
    read = functools.partial(
        read_episode,
        image_key=image_key,
        action_key=action_key,
        state_key=state_key,
        instruction_key=instruction_key,
        instruction=instruction,
        min_length=min_length,
    )
    first = read(files[0])
    observation: dict[str, rw.Feature] = {"image": rw.Image(image_size, encoding)}
    if "state" in first:
        observation["state"] = rw.Tensor(first["state"].shape[1])
    spec = rw.EpisodeSpec(
        observation=observation,
        action=rw.Tensor(first["action"].shape[1]),
        metadata={"file": rw.Text()},
        resize_mode=resize_mode,
    )
    counter = BadDataCounter(f"npz episodes in {src}")
    n_val = int(round(len(files) * val_fraction))
    splits = {"train": files[: len(files) - n_val], **({"val": files[len(files) - n_val :]} if n_val else {})}
    if not splits["train"]:
        raise DataError(f"--val-fraction {val_fraction} leaves no train episode of {len(files)}; lower it")

    def episodes(paths: list[Path]):
        for path in tqdm(paths, desc=f"convert npz {name}", unit="episode", disable=not progress):
            try:
                ep = read(path)
                for key, feature in (("action", spec.action), ("state", observation.get("state"))):
                    if isinstance(feature, rw.Tensor) and (key not in ep or ep[key].shape[1:] != feature.dims):
                        found = ep[key].shape[1:] if key in ep else "none"
                        raise DataError(
                            f"{path}: `{key}` has dims {found} but {files[0].name} has {feature.dims}; "
                            "every episode needs the same action (and state) dims"
                        )
            except DataError as err:
                if not skip_bad_episodes:
                    raise
                counter.record(err)
                continue
            frames = np.stack([resize_frame(f, (image_size, image_size), resize_mode) for f in ep["image"]])
            obs = {"image": frames, **({"state": ep["state"]} if "state" in ep else {})}
            yield {
                "key": path.stem,
                "observation": obs,
                "action": ep["action"],
                "language_instruction": ep["instruction"],
                "metadata": {"file": os.path.basename(path)},
            }

    folder = rw.write_dataset(
        out,
        name,
        spec,
        {split: episodes(paths) for split, paths in splits.items()},
        overwrite=overwrite,
        description=f"{len(files)} .npz episodes from {src} at {image_size}px ({resize_mode}).",
    )
    return folder, counter, {k: len(v) for k, v in splits.items()}
