"""Read a LeRobot dataset folder (format v3.0, and v2.1) episode by episode: numeric columns and camera frames.

Layout read (LeRobot's `src/lerobot/datasets/utils.py` path templates and
`docs/source/lerobot-dataset-v3.mdx`):

v3.0
    meta/info.json                                  codebase_version, fps, features, data_path, video_path
    meta/tasks.parquet                              task (the index pandas writes as a column), task_index
    meta/episodes/chunk-XXX/file-YYY.parquet        episode_index, tasks, length, data/chunk_index,
                                                    data/file_index, dataset_from_index, dataset_to_index,
                                                    videos/<key>/{chunk_index, file_index, from_timestamp, to_timestamp}
    data/chunk-XXX/file-YYY.parquet                 one row per frame (many episodes per file): the non-video
                                                    features, timestamp, frame_index, episode_index, index, task_index
    videos/<key>/chunk-XXX/file-YYY.mp4             many episodes per file; episode e's frame at data
                                                    timestamp t is the video frame at from_timestamp + t
v2.1
    meta/tasks.jsonl, meta/episodes.jsonl; data/chunk-XXX/episode_NNNNNN.parquet and
    videos/chunk-XXX/<key>/episode_NNNNNN.mp4, one file per episode, timestamps from 0.

Cameras stored as `dtype: "video"` are decoded with PyAV (any codec its FFmpeg
build decodes; LeRobot writes AV1 by default); `dtype: "image"` columns (PNG or
JPEG bytes in the parquet) are decoded with Pillow. Every failure is one
`DataError` line naming the file, the episode and the key.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Iterator

import av
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from av.codec import Codec
from av.error import FFmpegError
from PIL import Image

from data_pipelines.errors import DataError

VERSIONS = ("v3.0", "v2.1")


@dataclasses.dataclass
class EpisodeRef:
    index: int
    length: int
    tasks: list[str]
    data_file: str
    row_range: tuple[int, int] | None  # rows of this episode in data_file (v3.0: dataset index range), else all
    videos: dict[str, tuple[str, float]]  # camera key -> (video file, from_timestamp)


def _read_parquet(path: str):
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing; the LeRobot dataset is incomplete (download it again)")
    try:
        return pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise DataError(f"{path}: not a readable parquet file ({type(err).__name__}: {err})") from err


def _read_jsonl(path: str) -> list[dict]:
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing; the LeRobot dataset is incomplete (download it again)")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class LeRobotDataset:
    """A local LeRobot dataset folder; `episodes` in order, `read(episode, ...)` for its arrays."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        info_path = os.path.join(self.root, "meta", "info.json")
        if not os.path.isfile(info_path):
            raise DataError(f"{info_path}: missing; --src must be a LeRobot dataset folder (with meta/info.json)")
        with open(info_path) as f:
            self.info = json.load(f)
        self.version = str(self.info.get("codebase_version", ""))
        if self.version not in VERSIONS:
            raise DataError(
                f"{info_path}: codebase_version {self.version!r} is not supported; this reader handles "
                f"{', '.join(VERSIONS)} (convert older datasets with LeRobot's converter first)"
            )
        for key in ("fps", "features", "data_path"):
            if key not in self.info:
                raise DataError(f"{info_path}: key `{key}` missing")
        self.fps = float(self.info["fps"])
        self.features: dict[str, dict] = self.info["features"]
        self.cameras = [k for k, f in self.features.items() if f.get("dtype") in ("video", "image")]
        self.tasks = self._tasks()
        self.episodes = self._episodes_v3() if self.version == "v3.0" else self._episodes_v21()

    # ------------------------------------------------------------------ metadata
    def _path(self, *parts) -> str:
        return os.path.join(self.root, *parts)

    def _tasks(self) -> dict[int, str]:
        if self.version == "v3.0":
            table = _read_parquet(self._path("meta", "tasks.parquet")).to_pydict()
            if "task_index" not in table or "task" not in table:
                raise DataError(
                    f"{self._path('meta', 'tasks.parquet')}: needs columns task and task_index, has {sorted(table)}"
                )
            return {int(i): str(t) for i, t in zip(table["task_index"], table["task"])}
        return {int(r["task_index"]): str(r["task"]) for r in _read_jsonl(self._path("meta", "tasks.jsonl"))}

    def _episodes_v3(self) -> list[EpisodeRef]:
        folder = self._path("meta", "episodes")
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs if f.endswith(".parquet"))
        if not files:
            raise DataError(f"{folder}: no episode tables (meta/episodes/chunk-*/file-*.parquet)")
        rows = []
        for path in files:
            rows.extend(_read_parquet(path).to_pylist())
        refs = []
        for r in sorted(rows, key=lambda r: int(r["episode_index"])):
            where = f"{self._path('meta', 'episodes')}: episode {r.get('episode_index')}"
            try:
                data_file = self._path(
                    self.info["data_path"].format(chunk_index=r["data/chunk_index"], file_index=r["data/file_index"])
                )
                videos = {}
                for cam in self.cameras:
                    if self.features[cam]["dtype"] == "video":
                        videos[cam] = (
                            self._path(
                                self.info["video_path"].format(
                                    video_key=cam,
                                    chunk_index=r[f"videos/{cam}/chunk_index"],
                                    file_index=r[f"videos/{cam}/file_index"],
                                )
                            ),
                            float(r[f"videos/{cam}/from_timestamp"]),
                        )
                refs.append(
                    EpisodeRef(
                        int(r["episode_index"]),
                        int(r["length"]),
                        list(r["tasks"]),
                        data_file,
                        (int(r["dataset_from_index"]), int(r["dataset_to_index"])),
                        videos,
                    )
                )
            except KeyError as err:
                raise DataError(f"{where}: column {err} missing from the episode table") from err
        return refs

    def _episodes_v21(self) -> list[EpisodeRef]:
        chunk = int(self.info.get("chunks_size", 1000))
        refs = []
        for r in sorted(_read_jsonl(self._path("meta", "episodes.jsonl")), key=lambda r: int(r["episode_index"])):
            e = int(r["episode_index"])
            fmt = {"episode_chunk": e // chunk, "episode_index": e}
            videos = {
                cam: (self._path(self.info["video_path"].format(video_key=cam, **fmt)), 0.0)
                for cam in self.cameras
                if self.features[cam]["dtype"] == "video"
            }
            refs.append(
                EpisodeRef(
                    e,
                    int(r["length"]),
                    list(r.get("tasks", [])),
                    self._path(self.info["data_path"].format(**fmt)),
                    None,
                    videos,
                )
            )
        return refs

    # ------------------------------------------------------------------ data
    def camera_key(self, name: str) -> str:
        """`observation.images.top`, or its last part `top`, -> the feature key."""
        matches = [k for k in self.cameras if k == name or k.split(".")[-1] == name]
        if len(matches) != 1:
            raise DataError(
                f"{self.root}: camera {name!r} {'is ambiguous' if matches else 'not found'}; the dataset "
                f"has cameras {self.cameras} (pass one with --camera)"
            )
        return matches[0]

    def check_column(self, key: str, what: str) -> int:
        """The width of a numeric per-frame feature (e.g. the action); one line if it is missing."""
        feature = self.features.get(key)
        if feature is None or feature.get("dtype") in ("video", "image", "string"):
            numeric = [k for k, f in self.features.items() if f.get("dtype") not in ("video", "image", "string")]
            raise DataError(
                f"{self.root}/meta/info.json: no numeric feature {key!r} for the {what}; "
                f"numeric features are {numeric} (choose one with --{what}-key)"
            )
        return int(np.prod(feature.get("shape", [1])))

    def _rows(self, ep: EpisodeRef, cache: dict) -> dict:
        if ep.data_file not in cache:
            cache.clear()  # one open data file at a time: episodes are read in file order
            cache[ep.data_file] = _read_parquet(ep.data_file)
        table = cache[ep.data_file]
        if "episode_index" in table.column_names:
            # pyarrow.compute generates its functions at import: the stubs do not list them
            table = table.filter(pc.equal(table["episode_index"], ep.index))  # pyright: ignore[reportAttributeAccessIssue]
        if table.num_rows != ep.length:
            raise DataError(
                f"{ep.data_file}: episode {ep.index} has {table.num_rows} data rows but the episode table "
                f"says length {ep.length}; the dataset is inconsistent"
            )
        return {name: table[name] for name in table.column_names}

    def read(
        self, ep: EpisodeRef, keys: list[str], camera: str, decoder: VideoFrames, cache: dict
    ) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
        """({key: float32 [n, d]}, uint8 frames [n, H, W, 3], per-frame instructions) of one episode."""
        rows = self._rows(ep, cache)
        out = {}
        for key in keys:
            if key not in rows:
                raise DataError(f"{ep.data_file}: episode {ep.index}: key `{key}` missing (columns {sorted(rows)})")
            values = rows[key].to_pylist()
            out[key] = np.asarray(values, np.float32).reshape(ep.length, -1)
        timestamps = (
            np.asarray(rows["timestamp"].to_pylist(), np.float64).reshape(-1)
            if "timestamp" in rows
            else np.arange(ep.length) / self.fps
        )
        if self.features[camera]["dtype"] == "video":
            if camera not in ep.videos:
                raise DataError(f"episode {ep.index}: no video file for camera {camera}")
            path, start = ep.videos[camera]
            frames = decoder.frames(path, start + timestamps, f"episode {ep.index} camera {camera}")
        else:
            frames = np.stack(
                [
                    _decode_image(v, f"{ep.data_file}: episode {ep.index} key `{camera}`")
                    for v in rows[camera].to_pylist()
                ]
            )
        if "task_index" in rows:
            task_ids = rows["task_index"].to_pylist()
            missing = sorted({int(i) for i in task_ids} - set(self.tasks))
            if missing:
                raise DataError(f"{ep.data_file}: episode {ep.index}: task_index {missing} not in the tasks table")
            texts = [self.tasks[int(i)] for i in task_ids]
        elif ep.tasks:
            texts = [ep.tasks[0]] * ep.length
        else:
            raise DataError(f"{ep.data_file}: episode {ep.index}: neither task_index nor episode tasks give a task")
        return out, frames, texts


def _decode_image(value, where: str) -> np.ndarray:
    data = value.get("bytes") if isinstance(value, dict) else value
    if not data:
        raise DataError(
            f"{where}: image without embedded bytes (a path-only image column); re-save the dataset "
            "with embedded images"
        )
    try:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except Exception as err:
        raise DataError(f"{where}: image bytes cannot be decoded ({err})") from err


class VideoFrames:
    """Frames of MP4 files by timestamp, decoded sequentially with PyAV (episodes are read in file order)."""

    def __init__(self, fps: float):
        self.tolerance = 0.5 / fps
        self._path: str | None = None
        self._container = None
        self._frames: Iterator | None = None
        self._last: tuple[float, np.ndarray] | None = None

    def _open(self, path: str, start: float) -> None:
        self.close()
        if not os.path.isfile(path):
            raise DataError(f"{path}: video file missing; the LeRobot dataset is incomplete")
        try:
            container = av.open(path)
            stream = container.streams.video[0]
        except (FFmpegError, IndexError) as err:
            raise DataError(f"{path}: cannot be decoded as video ({err}); the file is corrupt or not a video") from err
        try:
            Codec(stream.codec_context.name, "r")
        except Exception as err:
            raise DataError(
                f"{path}: codec {stream.codec_context.name!r} cannot be decoded by this PyAV/FFmpeg "
                f"build ({err}); re-encode the videos (e.g. to h264) or install a PyAV with that "
                "decoder"
            ) from err
        if start > 1.0 and stream.time_base is not None:  # else decode from the start (frames are skipped)
            container.seek(int(start / stream.time_base), stream=stream, backward=True, any_frame=False)
        self._path, self._container, self._last = path, container, None
        self._frames = ((float(f.time), f) for f in container.decode(stream))

    def frames(self, path: str, times: np.ndarray, where: str) -> np.ndarray:
        if path != self._path or self._last is None or times[0] < self._last[0] - self.tolerance:
            self._open(path, float(times[0]))
        decoded = self._frames
        assert decoded is not None  # set by _open
        out = []
        for i, t in enumerate(times):
            while self._last is None or self._last[0] < t - self.tolerance:
                try:
                    time_s, frame = next(decoded)
                except StopIteration:
                    raise DataError(
                        f"{path}: {where} has {len(times)} data frames but the video ends after "
                        f"{i} of them (t={t:.3f} s); episode lengths of data and video differ"
                    ) from None
                except Exception as err:  # decoder errors inside the stream
                    raise DataError(f"{path}: {where}: video cannot be decoded at t={t:.3f} s ({err})") from err
                self._last = (time_s, frame)
            if abs(self._last[0] - t) > self.tolerance:
                raise DataError(
                    f"{path}: {where}: no video frame at t={t:.3f} s (nearest {self._last[0]:.3f} s); "
                    "the data timestamps and the video disagree"
                )
            frame = self._last[1]
            out.append(frame if isinstance(frame, np.ndarray) else frame.to_ndarray(format="rgb24"))
            self._last = (self._last[0], out[-1])
        return np.stack(out)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._path = self._container = self._frames = self._last = None
