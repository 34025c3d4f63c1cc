"""A LeRobot dataset (v3.0 or v2.1) -> our RLDS dataset, through the generic writer, with its statistics.

One camera (`camera`), the action column (`action_key`, default `action`) and
optionally a state column (`state_key`, default `observation.state` when the
dataset has it) become, per frame:

    steps/observation/image   uint8 [S, S, 3]  the camera frame resized to S (vla_runtime.policy_io, `resize_mode`)
    steps/observation/state   float32 [d]      when a state key is used
    steps/action              float32 [A]      as stored (LeRobot keeps actions in the robot's units)
    steps/language_instruction                 the frame's task from the tasks table
    episode_metadata/{episode_index, task, resize_mode}

Split `train` holds every episode (no silent hold-out). The dataset folder
also gets `statistics.json` (action and state statistics, our format) and
`conversion.json` (source, keys, counts, frames/s).
"""

from __future__ import annotations

import json
import time

import numpy as np
from tqdm import tqdm

from data_pipelines import rlds_writer as rw
from data_pipelines import statistics
from data_pipelines.errors import DataError
from data_pipelines.lerobot_dataset import LeRobotDataset, VideoFrames
from vla_runtime.policy_io import resize_frame

DEFAULT_NAME = "lerobot_dataset"


def convert(
    src: str,
    out: str,
    *,
    camera: str | None = None,
    action_key: str = "action",
    state_key: str | None = "auto",
    image_size: int = 224,
    resize_mode: str = "resize",
    name: str = DEFAULT_NAME,
    encoding: str = "jpeg",
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[str, dict]:
    """Convert; returns (dataset folder, conversion report). `state_key="auto"`: observation.state if present.

    Frames are resized as the robot's policy I/O resizes them (`resize_mode`: resize, pad or
    center_crop), and each episode records the mode; training must use the same data.config.resize_mode.
    """
    ds = LeRobotDataset(src)
    if camera is None:
        if len(ds.cameras) != 1:
            raise DataError(f"{src}: has cameras {ds.cameras}; choose one with --camera")
        camera = ds.cameras[0]
    camera = ds.camera_key(camera)
    action_dim = ds.check_column(action_key, "action")
    if state_key == "auto":
        state_key = "observation.state" if "observation.state" in ds.features else None
    keys = [action_key] + ([state_key] if state_key else [])
    state_dim = ds.check_column(state_key, "state") if state_key else 0
    rw.check_target(out, name, overwrite)
    observation: dict[str, rw.Feature] = {"image": rw.Image(image_size, encoding)}
    if state_key:
        observation["state"] = rw.Tensor(state_dim)
    spec = rw.EpisodeSpec(
        observation=observation,
        action=rw.Tensor(action_dim),
        metadata={"episode_index": rw.Scalar(np.int64), "task": rw.Text()},
        resize_mode=resize_mode,
    )
    seen: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    start = time.perf_counter()
    report = {
        "source": ds.root,
        "codebase_version": ds.version,
        "fps": ds.fps,
        "camera": camera,
        "action_key": action_key,
        "state_key": state_key,
        "image_size": image_size,
        "resize_mode": resize_mode,
    }

    def episodes():
        decoder, cache = VideoFrames(ds.fps), {}
        try:
            for ep in tqdm(ds.episodes, desc="convert lerobot", unit="episode", disable=not progress):
                columns, frames, texts = ds.read(ep, keys, camera, decoder, cache)
                for k in keys:
                    seen[k].append(columns[k])
                obs = {"image": np.stack([resize_frame(f, (image_size, image_size), resize_mode) for f in frames])}
                if state_key:
                    obs["state"] = columns[state_key]
                yield {
                    "key": f"episode_{ep.index:06d}",
                    "observation": obs,
                    "action": columns[action_key],
                    "language_instruction": texts,
                    "metadata": {"episode_index": np.int64(ep.index), "task": texts[0]},
                }
        finally:
            decoder.close()

    def extra_files() -> dict[str, str]:
        seconds = time.perf_counter() - start
        frames = int(sum(len(a) for a in seen[action_key]))
        stats = {
            "action": statistics.compute_statistics(
                np.concatenate(seen[action_key]), num_trajectories=len(seen[action_key])
            )
        }
        if state_key:
            stats["state"] = statistics.compute_statistics(np.concatenate(seen[state_key]))
        report.update(
            {
                "episodes": len(seen[action_key]),
                "frames": frames,
                "seconds": round(seconds, 2),
                "frames_per_s": round(frames / max(seconds, 1e-9), 1),
            }
        )
        return {"statistics.json": json.dumps(stats, indent=1), "conversion.json": json.dumps(report, indent=1)}

    folder = rw.write_dataset(
        out,
        name,
        spec,
        {"train": episodes()},
        overwrite=overwrite,
        extra_files=extra_files,
        description=f"LeRobot dataset {ds.root} ({ds.version}) converted: camera {camera} at {image_size}px "
        f"({resize_mode}), action `{action_key}` ({action_dim}-D), state `{state_key}`.",
    )
    return folder, report
