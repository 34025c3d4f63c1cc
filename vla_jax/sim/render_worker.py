"""MuJoCo rendering in a child process.

Why a separate process: Mesa's software OpenGL (llvmpipe, what EGL/OSMesa use
on a machine without a GPU) and TensorFlow both carry LLVM, and with both in
one process it segfaults (measured here: TF imported before or after an EGL
context, exit 139). The demo, the tests (pytest workers run data tests with
TF) and users' scripts mix the two, so the simulator keeps every GL call in a
worker that never imports TensorFlow. Frames come back over a pipe: a 224x224
frame is 150 KB, far below the cost of rendering it.

Protocol (stdin/stdout of the worker): each message is a 4-byte little-endian
length and a JSON object; a ``render`` reply is followed by the raw uint8 frame.

    {"cmd": "load", "xml": str, "size": int}   -> {"handle": int}
    {"cmd": "render", "handle": int, "qpos": [x, y, yaw]} -> {"shape": [H, W, 3]} + bytes
    {"cmd": "free", "handle": int}             -> {}
Any failure replies {"error": message} (user-fixable ones start with "VLAJaxError: ").
"""

from __future__ import annotations

import atexit
import json
import struct
import subprocess
import sys
import threading
from typing import Any

import numpy as np

from vla_jax.errors import VLAJaxError
from vla_jax.sim.scene import import_mujoco, make_renderer

_LAYOUT_FIELDS = (
    "body_pos",
    "body_quat",
    "geom_size",
    "geom_pos",
    "geom_quat",
    "geom_rgba",
    "geom_rbound",
    "geom_aabb",
    "light_pos",
    "light_dir",
    "light_diffuse",
    "mat_rgba",
    "cam_pos",  # the embodiment's camera (vla_jax.sim.embodiments)
    "cam_quat",
    "cam_fovy",
)


def _send(stream, obj: dict, payload: bytes = b"") -> None:
    data = json.dumps(obj).encode()
    stream.write(struct.pack("<I", len(data)) + data + payload)
    stream.flush()


def _recv(stream) -> dict | None:
    head = stream.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack("<I", head)
    return json.loads(stream.read(n))


# ---------------------------------------------------------------------------- worker side
class _Worker:
    def __init__(self):
        self.mj: Any = import_mujoco()  # the mujoco module (its bindings carry no type stubs)
        self.live: dict[int, tuple] = {}  # handle -> (model, data, renderer, size)
        # Opening a GL context and uploading a model costs ~0.5 s on a CPU, more than a
        # whole episode of rendering; freed renderers are reused for the next world. All
        # worlds compile to models of one structure (scene.build_mjcf), so reuse is a copy
        # of the arrays a layout sets.
        self.free: dict[int, list] = {}
        self.next_handle = 0

    def load(self, xml: str, size: int) -> int:
        fresh = self.mj.MjModel.from_xml_string(xml)
        model, renderer = fresh, None
        pool = self.free.get(size)
        if pool:
            old_model, old_renderer = pool.pop()
            if all(getattr(old_model, f).shape == getattr(fresh, f).shape for f in _LAYOUT_FIELDS):
                for f in _LAYOUT_FIELDS:
                    getattr(old_model, f)[...] = getattr(fresh, f)
                model, renderer = old_model, old_renderer
            else:
                old_renderer.close()
        if renderer is None:
            renderer = make_renderer(model, size, size)
        handle = self.next_handle
        self.next_handle += 1
        self.live[handle] = (model, self.mj.MjData(model), renderer, size)
        return handle

    def render(self, handle: int, qpos) -> np.ndarray:
        model, data, renderer, _ = self.live[handle]
        for name, value in zip(("base_x", "base_y", "base_yaw"), qpos):
            data.qpos[model.joint(name).qposadr[0]] = value
        self.mj.mj_forward(model, data)
        renderer.update_scene(data, camera="front")
        return renderer.render()

    def release(self, handle: int) -> None:
        model, _, renderer, size = self.live.pop(handle)
        self.free.setdefault(size, []).append((model, renderer))


def serve(handle_message) -> None:
    """The worker loop: `handle_message(msg) -> (reply, payload bytes)` per request until `exit` or EOF.

    A reply with a "shape" key is followed by that many uint8 bytes (frames);
    any exception is sent back as {"error": ...} for the parent to raise.
    """
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but protocol bytes may reach the pipe
    while True:
        msg = _recv(stdin)
        if msg is None or msg.get("cmd") == "exit":
            return
        try:
            reply, payload = handle_message(msg)
            _send(stdout, reply, payload)
        except VLAJaxError as err:
            _send(stdout, {"error": f"VLAJaxError: {err}"})
        except Exception as err:  # reported to the parent, which raises it there
            _send(stdout, {"error": f"{type(err).__name__}: {err}"})


def worker_main() -> None:
    worker = None

    def handle(msg: dict) -> tuple[dict, bytes]:
        nonlocal worker
        if worker is None:
            worker = _Worker()
        if msg["cmd"] == "load":
            return {"handle": worker.load(msg["xml"], int(msg["size"]))}, b""
        if msg["cmd"] == "render":
            frame = np.ascontiguousarray(worker.render(int(msg["handle"]), msg["qpos"]), dtype=np.uint8)
            return {"shape": list(frame.shape)}, frame.tobytes()
        if msg["cmd"] == "free":
            worker.release(int(msg["handle"]))
            return {}, b""
        return {"error": f"unknown command {msg['cmd']!r}"}, b""

    serve(handle)


# ---------------------------------------------------------------------------- parent side
class RenderClient:
    """Talks to one worker process; thread-safe; restarts it if it died.

    `worker_module` names the module whose `worker_main()` serves the protocol
    (the Meta-World simulator has its own, vla_jax/sim/metaworld/worker.py).
    """

    def __init__(self, worker_module: str = __name__):
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._module = worker_module

    def _ensure(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", f"from {self._module} import worker_main; worker_main()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        return self._proc

    def call(self, msg: dict) -> tuple[dict, bytes]:
        with self._lock:
            proc = self._ensure()
            stdin, stdout = proc.stdin, proc.stdout
            assert stdin is not None and stdout is not None  # both are pipes (_ensure)
            try:
                _send(stdin, msg)
                reply = _recv(stdout)
            except BrokenPipeError:
                reply = None
            if reply is None:
                code = proc.wait(timeout=10)
                raise RuntimeError(f"the MuJoCo render worker exited with code {code} (see its messages above)")
            if "error" in reply:
                text = reply["error"]
                if text.startswith("VLAJaxError: "):
                    raise VLAJaxError(text[len("VLAJaxError: ") :])
                raise RuntimeError(f"MuJoCo render worker: {text}")
            payload = b""
            if "shape" in reply:
                payload = stdout.read(int(np.prod(reply["shape"])))
            return reply, payload

    def load(self, xml: str, size: int) -> int:
        return int(self.call({"cmd": "load", "xml": xml, "size": int(size)})[0]["handle"])

    def render(self, handle: int, qpos) -> np.ndarray:
        reply, payload = self.call({"cmd": "render", "handle": handle, "qpos": [float(v) for v in qpos]})
        return np.frombuffer(payload, np.uint8).reshape(reply["shape"]).copy()

    def free(self, handle: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.call({"cmd": "free", "handle": handle})

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                assert proc.stdin is not None
                _send(proc.stdin, {"cmd": "exit"})
                proc.stdin.close()
                proc.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                proc.kill()


_CLIENT: RenderClient | None = None


def client() -> RenderClient:
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = RenderClient()
        atexit.register(_CLIENT.close)
    return _CLIENT
