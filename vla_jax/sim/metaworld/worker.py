"""Meta-World physics and rendering in a child process that never imports TensorFlow.

Collection writes RLDS with TensorFlow and evaluation may run next to it, while
MuJoCo renders through Mesa's llvmpipe; the two LLVMs crash one process
(vla_jax/sim/render_worker.py, whose message protocol and client this reuses).
A 64 px frame is 12 KB over a pipe, far below its ~10 ms render.

Requests (JSON; replies with "shape" are followed by that many uint8 bytes):

    {"cmd": "make", "task", "size", "camera"}     -> {"handle", "max_steps", "instruction"}
    {"cmd": "reset", "handle", "seed"}            -> {"state", "shape"} + frame
    {"cmd": "step", "handle", "action"}           -> {"state", "success", "truncated", "shape"} + frame
    {"cmd": "expert_episode", "handle", "seed", "max_steps"}
        -> {"success", "states" [n, 4], "actions" [n, 4], "shape" [n, S, S, 3]} + frames
    {"cmd": "free", "handle"}                     -> {}
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools

import numpy as np

from vla_jax.errors import VLAJaxError
from vla_jax.sim import render_worker
from vla_jax.sim.metaworld.env import MetaWorldTaskEnv
from vla_jax.sim.metaworld.tasks import INSTRUCTIONS


# ---------------------------------------------------------------------------- worker side
def expert_episode(env, seed: int, max_steps: int) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray]:
    """The scripted expert from `reset(seed)` until success or `max_steps`: (success, frames, states, actions).

    Step t holds the frame and state the expert saw and the action it took; the
    episode ends with the action after which `info["success"]` first holds.
    """
    ob = env.reset(seed)
    frames, states, actions = [], [], []
    success = False
    for _ in range(max_steps):
        action = env.expert_action()
        frames.append(ob.frame)
        states.append(ob.state)
        actions.append(action)
        ob = env.step(action)
        if ob.success:
            success = True
            break
        if ob.truncated:
            break
    return success, np.stack(frames), np.stack(states).astype(np.float32), np.stack(actions).astype(np.float32)


def worker_main() -> None:
    live: dict[int, MetaWorldTaskEnv] = {}
    ids = itertools.count()  # never reused within a worker

    def frame_reply(ob, **extra) -> tuple[dict, bytes]:
        return {"state": ob.state.tolist(), "shape": list(ob.frame.shape), **extra}, ob.frame.tobytes()

    def handle(msg: dict) -> tuple[dict, bytes]:
        cmd = msg["cmd"]
        if cmd == "make":
            env = MetaWorldTaskEnv(msg["task"], int(msg["size"]), msg["camera"])
            handle_id = next(ids)
            live[handle_id] = env
            return {"handle": handle_id, "max_steps": env.max_steps, "instruction": INSTRUCTIONS[env.task]}, b""
        env = live[int(msg["handle"])]
        if cmd == "reset":
            return frame_reply(env.reset(int(msg["seed"])))
        if cmd == "step":
            ob = env.step(msg["action"])
            return frame_reply(ob, success=ob.success, truncated=ob.truncated)
        if cmd == "expert_episode":
            success, frames, states, actions = expert_episode(env, int(msg["seed"]), int(msg["max_steps"]))
            return (
                {
                    "success": success,
                    "states": states.tolist(),
                    "actions": actions.tolist(),
                    "shape": list(frames.shape),
                },
                np.ascontiguousarray(frames).tobytes(),
            )
        if cmd == "free":
            live.pop(int(msg["handle"])).close()
            return {}, b""
        return {"error": f"unknown command {cmd!r}"}, b""

    render_worker.serve(handle)


# ---------------------------------------------------------------------------- parent side
@dataclasses.dataclass
class ExpertEpisode:
    success: bool
    frames: np.ndarray  # uint8 [n, S, S, 3]
    states: np.ndarray  # float32 [n, 4]
    actions: np.ndarray  # float32 [n, 4]


def _frames(reply: dict, payload: bytes) -> np.ndarray:
    return np.frombuffer(payload, np.uint8).reshape(reply["shape"]).copy()


class RemoteTaskEnv:
    """A `MetaWorldTaskEnv` living in the worker process; use as a context manager."""

    def __init__(
        self, task: str, image_size: int, camera: str = "corner2", client: render_worker.RenderClient | None = None
    ):
        self.client = client or shared_client()
        reply, _ = self.client.call({"cmd": "make", "task": task, "size": int(image_size), "camera": camera})
        self.handle, self.max_steps, self.instruction = reply["handle"], int(reply["max_steps"]), reply["instruction"]
        self.task = task

    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        reply, payload = self.client.call({"cmd": "reset", "handle": self.handle, "seed": int(seed)})
        return _frames(reply, payload), np.asarray(reply["state"], np.float32)

    def step(self, action) -> tuple[np.ndarray, np.ndarray, bool, bool]:
        action = [float(a) for a in np.asarray(action, np.float64).reshape(-1)]
        if not np.all(np.isfinite(action)):
            raise VLAJaxError(f"the policy sent a non-finite Meta-World action {action}")
        reply, payload = self.client.call({"cmd": "step", "handle": self.handle, "action": action})
        return _frames(reply, payload), np.asarray(reply["state"], np.float32), reply["success"], reply["truncated"]

    def expert_episode(self, seed: int, max_steps: int | None = None) -> ExpertEpisode:
        reply, payload = self.client.call(
            {
                "cmd": "expert_episode",
                "handle": self.handle,
                "seed": int(seed),
                "max_steps": int(max_steps or self.max_steps),
            }
        )
        return ExpertEpisode(
            bool(reply["success"]),
            _frames(reply, payload),
            np.asarray(reply["states"], np.float32),
            np.asarray(reply["actions"], np.float32),
        )

    def close(self) -> None:
        self.client.call({"cmd": "free", "handle": self.handle})

    def __enter__(self) -> RemoteTaskEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_CLIENT: render_worker.RenderClient | None = None


def shared_client() -> render_worker.RenderClient:
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = render_worker.RenderClient(__name__)
        atexit.register(_CLIENT.close)
    return _CLIENT
