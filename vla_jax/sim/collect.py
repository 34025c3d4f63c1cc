"""Scripted-expert episodes written as the users' HDF5 files (docs/mobile_episodes.md), byte for byte in format.

Each file: ``images`` uint8 (T, H, W, 3) gzip BGR, ``actions`` float32 (T, 3)
key presses, ``action_event_types`` UTF-8 strings, optional
``language_instruction`` bytes (1,) S256, the users' attributes, and the name
``episode_{YYYYMMDD_HHMMSS}_{tokens}.h5``. Frame 0 is ``episode_start`` with
a zero action, every key press is a ``start_action`` frame that drives 0.4 s,
and the last frame (at the basket) is ``stop_action`` with a zero action.

Timestamps are synthetic and derived from the seed (one episode every ~2
minutes from a fixed date), so a collection is reproducible and the users'
chronological (filename-order) train/val split works on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import cast

import h5py
import numpy as np
from tqdm import tqdm

from vla_jax.errors import VLAJaxError
from vla_jax.sim import embodiments
from vla_jax.sim.env import NavEnv
from vla_jax.sim.expert import DiffDriveExpert, ScriptedExpert
from vla_jax.sim.scenarios import Scenario, sample_layout, scenario_schedule

ACTION_CHUNK_SIZE = 8  # the users' collector writes this attribute
_START = dt.datetime(2025, 3, 3, 9, 0, 0)
_MAX_LAYOUT_RETRIES = 20


@dataclasses.dataclass
class Episode:
    scenario: Scenario
    layout_seed: int
    images: np.ndarray  # RGB uint8 [T, H, W, 3]
    actions: np.ndarray  # float32 [T, 3]
    events: list[str]
    path: np.ndarray  # dense base path [N, 2]


def run_expert(
    scenario: Scenario, layout_seed: int, image_size: int, embodiment: str = embodiments.TARGET
) -> Episode | None:
    """One expert episode of `embodiment` (default the users' robot), or None if the expert did not succeed."""
    robot = embodiments.get(embodiment)
    layout = robot.world(sample_layout(scenario, layout_seed))
    expert = (DiffDriveExpert if robot.drive == "differential" else ScriptedExpert)(layout, scenario.side)
    with NavEnv(layout, image_size=image_size, max_steps=robot.max_steps, embodiment=robot) as env:
        images = [env.render()]
        actions = [np.zeros(3, np.float32)]
        events = ["episode_start"]
        env.step(actions[0])
        while not env.done:
            action = expert.act(env.pose)
            images.append(env.render())
            actions.append(action)
            events.append("start_action")
            env.step(action)
        if not env.outcome(scenario.side).success:
            return None
        images.append(env.render())
        actions.append(np.zeros(3, np.float32))
        events.append("stop_action")
        frames = np.stack(cast(list[np.ndarray], images))  # NavEnv renders whenever it has an image_size
        return Episode(
            scenario, layout_seed, frames, np.stack(actions).astype(np.float32), events, np.asarray(env.path)
        )


def episode_filename(timestamp: dt.datetime, scenario: Scenario) -> str:
    return f"episode_{timestamp:%Y%m%d_%H%M%S}_{scenario.tokens}.h5"


def _time_period(hour: int) -> str:
    return "morning" if hour < 12 else ("afternoon" if hour < 17 else "evening")


def write_episode(path: Path, episode: Episode, timestamp: dt.datetime, instruction: str | None) -> None:
    """Write one episode exactly in the users' layout (BGR images, gzip)."""
    t = len(episode.actions)
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "images",
            data=episode.images[..., ::-1],
            dtype=np.uint8,
            compression="gzip",
            chunks=(1,) + episode.images.shape[1:],
        )
        f.create_dataset("actions", data=episode.actions.astype(np.float32))
        f.create_dataset("action_event_types", data=episode.events, dtype=h5py.string_dtype("utf-8"))
        if instruction is not None:
            f.create_dataset("language_instruction", data=np.array([instruction.encode()], dtype="S256"))
        f.attrs["episode_name"] = path.stem
        f.attrs["total_duration"] = float((t - 1) * 0.4)
        f.attrs["num_frames"] = t
        f.attrs["action_chunk_size"] = ACTION_CHUNK_SIZE
        f.attrs["obstacle_layout_type"] = episode.scenario.layout_type
        f.attrs["time_period"] = _time_period(timestamp.hour)
        f.attrs["collection_datetime"] = timestamp.isoformat()
        f.attrs["collection_hour"] = timestamp.hour
        f.attrs["collection_minute"] = timestamp.minute


def collect(
    out_dir: str | Path,
    num_episodes: int,
    *,
    image_size: int = 224,
    seed: int = 0,
    instruction_fraction: float = 0.5,
    progress: bool = True,
    embodiment: str = embodiments.TARGET,
) -> list[Path]:
    """Collect `num_episodes` expert episodes into `out_dir`; returns the file paths in time order.

    A random `instruction_fraction` of the files carry ``language_instruction``;
    the others leave it to be derived from the filename, as in the real data. Another
    `embodiment` than the users' (vla_jax/sim/embodiments.py) words its instructions
    differently, so every one of its files stores its instruction.
    """
    robot = embodiments.get(embodiment)
    if num_episodes < 1:
        raise VLAJaxError(f"--episodes {num_episodes} must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(out.glob("episode_*.h5"))
    if existing:
        raise VLAJaxError(f"{out} already holds {len(existing)} episode files; pass an empty or new --out folder")
    rng = np.random.default_rng([seed, 1])
    schedule = scenario_schedule(num_episodes, seed)
    timestamp = _START + dt.timedelta(days=int(seed) % 365)
    paths = []
    for i, scenario in enumerate(tqdm(schedule, desc="sim-collect", unit="episode", disable=not progress)):
        for retry in range(_MAX_LAYOUT_RETRIES):
            episode = run_expert(scenario, seed * 100_003 + i * 101 + retry, image_size, embodiment)
            if episode is not None:
                break
        else:
            raise RuntimeError(f"the scripted expert failed {_MAX_LAYOUT_RETRIES} worlds of {scenario.tokens}")
        timestamp += dt.timedelta(seconds=int(rng.integers(90, 180)))
        stored = rng.random() < instruction_fraction or not robot.is_target
        instruction = robot.instruction(scenario.side) if stored else None
        path = out / episode_filename(timestamp, scenario)
        write_episode(path, episode, timestamp, instruction)
        paths.append(path)
    return paths
