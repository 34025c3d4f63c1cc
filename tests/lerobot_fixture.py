"""Tiny LeRobot datasets written file for file per the published format, with pyarrow and a real video encoder.

LeRobot's own writer (the `lerobot` / `lerobot-dataset` packages) cannot be a
test dependency here: lerobot 0.4.4 (the newest this index serves) requires
torch<2.11 and lerobot-dataset 0.4.4 huggingface-hub<0.36, while the project
pins torch==2.13.0 and transformers 5.24 needs huggingface-hub 1.x. So these
files follow LeRobot's v3.0 layout (`docs/source/lerobot-dataset-v3.mdx`; path
templates and columns of `src/lerobot/datasets/utils.py`, `dataset_metadata.py`)
and v2.1 layout, with videos encoded by PyAV: AV1 via libsvtav1 in yuv420p, as
LeRobot records them by default.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FPS = 10
V3_DATA = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_VIDEO = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
V21_DATA = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V21_VIDEO = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"


def make_episodes(lengths, size=64, state_dim=4, action_dim=4, tasks=("Open a drawer", "Press a button"), seed=0):
    """Episodes whose frame t of episode e has a distinct mean brightness (so decoding can be checked)."""
    rng = np.random.default_rng(seed)
    episodes = []
    for e, n in enumerate(lengths):
        level = (40 + 10 * e + 6 * np.arange(n)) % 220 + 20
        frames = np.broadcast_to(level[:, None, None, None], (n, size, size, 3)).astype(np.uint8).copy()
        frames[:, : size // 4, : size // 4] = [255, 0, 0]  # a red corner: channel order must survive
        episodes.append(
            {
                "frames": frames,
                "state": rng.normal(size=(n, state_dim)).astype(np.float32),
                "action": rng.uniform(-1, 1, (n, action_dim)).astype(np.float32),
                "task": tasks[e % len(tasks)],
            }
        )
    return episodes


def encode_video(path: Path, frames: np.ndarray, fps: int, codec: str = "libsvtav1") -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "libsvtav1":
            stream.options = {"g": "2", "crf": "30", "preset": "12"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _features(episodes, camera: str, size: tuple[int, int], fps: int, codec: str) -> dict:
    state_dim, action_dim = episodes[0]["state"].shape[1], episodes[0]["action"].shape[1]
    height, width = size
    return {
        camera: {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": height,
                "video.width": width,
                "video.codec": "av1" if "av1" in codec else codec,
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "has_audio": False,
            },
        },
        "observation.state": {"dtype": "float32", "shape": [state_dim], "names": None},
        "action": {"dtype": "float32", "shape": [action_dim], "names": None},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }


def _frame_table(episodes, task_ids, first_index=0):
    import pyarrow as pa

    cols = {
        k: []
        for k in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index", "task_index")
    }
    index = first_index
    for e, ep in episodes:
        n = len(ep["action"])
        cols["observation.state"] += ep["state"].tolist()
        cols["action"] += ep["action"].tolist()
        cols["timestamp"] += [t / FPS for t in range(n)]
        cols["frame_index"] += list(range(n))
        cols["episode_index"] += [e] * n
        cols["index"] += list(range(index, index + n))
        cols["task_index"] += [task_ids[ep["task"]]] * n
        index += n
    return pa.table(
        {
            "observation.state": pa.array(cols["observation.state"], pa.list_(pa.float32())),
            "action": pa.array(cols["action"], pa.list_(pa.float32())),
            "timestamp": pa.array(cols["timestamp"], pa.float32()),
            **{k: pa.array(cols[k], pa.int64()) for k in ("frame_index", "episode_index", "index", "task_index")},
        }
    )


def _info(version, episodes, features, tasks, data_path, video_path) -> dict:
    return {
        "codebase_version": version,
        "robot_type": "sawyer",
        "total_episodes": len(episodes),
        "total_frames": int(sum(len(e["action"]) for e in episodes)),
        "total_tasks": len(tasks),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": FPS,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": data_path,
        "video_path": video_path,
        "features": features,
    }


def write_v30(root: Path, episodes, camera="observation.image", codec="libsvtav1", episodes_per_file=None) -> Path:
    """v3.0: episodes concatenated into shared data parquet and mp4 files (`episodes_per_file` per file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = episodes[0]["frames"].shape[1:3]  # (height, width)
    tasks = list(dict.fromkeys(e["task"] for e in episodes))
    task_ids = {t: i for i, t in enumerate(tasks)}
    per_file = episodes_per_file or len(episodes)
    rows, index = [], 0
    for file_index, start in enumerate(range(0, len(episodes), per_file)):
        group = list(enumerate(episodes))[start : start + per_file]
        data_file = root / V3_DATA.format(chunk_index=0, file_index=file_index)
        data_file.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_frame_table(group, task_ids, index), data_file)
        encode_video(
            root / V3_VIDEO.format(video_key=camera, chunk_index=0, file_index=file_index),
            np.concatenate([ep["frames"] for _, ep in group]),
            FPS,
            codec,
        )
        t0 = 0.0
        for e, ep in group:
            n = len(ep["action"])
            rows.append(
                {
                    "episode_index": e,
                    "tasks": [ep["task"]],
                    "length": n,
                    "data/chunk_index": 0,
                    "data/file_index": file_index,
                    "dataset_from_index": index,
                    "dataset_to_index": index + n,
                    f"videos/{camera}/chunk_index": 0,
                    f"videos/{camera}/file_index": file_index,
                    f"videos/{camera}/from_timestamp": t0,
                    f"videos/{camera}/to_timestamp": t0 + n / FPS,
                    "meta/episodes/chunk_index": 0,
                    "meta/episodes/file_index": 0,
                }
            )
            index += n
            t0 += n / FPS
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    # What pandas writes for LeRobot's tasks DataFrame (index "task", column task_index).
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "pandas_version": "2.2.3",
    }
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pq.write_table(
        table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()}), root / "meta" / "tasks.parquet"
    )
    info = _info("v3.0", episodes, _features(episodes, camera, size, FPS, codec), tasks, V3_DATA, V3_VIDEO)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    return root


def write_v21(root: Path, episodes, camera="observation.image", codec="libsvtav1") -> Path:
    """v2.1: one data parquet and one mp4 per episode; tasks and episodes as JSON lines."""
    import pyarrow.parquet as pq

    size = episodes[0]["frames"].shape[1:3]  # (height, width)
    tasks = list(dict.fromkeys(e["task"] for e in episodes))
    task_ids = {t: i for i, t in enumerate(tasks)}
    index = 0
    for e, ep in enumerate(episodes):
        fmt = {"episode_chunk": 0, "episode_index": e}
        data_file = root / V21_DATA.format(**fmt)
        data_file.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_frame_table([(e, ep)], task_ids, index), data_file)
        encode_video(root / V21_VIDEO.format(video_key=camera, **fmt), ep["frames"], FPS, codec)
        index += len(ep["action"])
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "tasks.jsonl").write_text(
        "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(tasks))
    )
    (root / "meta" / "episodes.jsonl").write_text(
        "".join(
            json.dumps({"episode_index": e, "tasks": [ep["task"]], "length": len(ep["action"])}) + "\n"
            for e, ep in enumerate(episodes)
        )
    )
    info = _info("v2.1", episodes, _features(episodes, camera, size, FPS, codec), tasks, V21_DATA, V21_VIDEO)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    return root
