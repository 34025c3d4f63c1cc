"""Websocket policy server: one `Policy` per connection, msgpack-numpy frames, /healthz over HTTP.

Protocol (every message is a msgpack map, arrays as in `wire`):

    server -> client on connect:  {"type": "metadata", ...export config summary...}
    client: {"type": "reset", "instruction": str}   -> {"type": "reset_ok", "timing": {...}}
    client: {"type": "step", "image": uint8 [H, W, 3]} -> {"type": "action", "action": f32 [C, A], "timing": {...}}
    anything wrong                                   -> {"type": "error", "message": str}  (connection stays open)

Each connection gets its own episode state (`Policy.fork`) over shared weights;
inference calls are serialised by a lock because one model runs one batch at a time.
Binds to 127.0.0.1 unless told otherwise: a robot's policy port should not be on the network by accident.
"""

from __future__ import annotations

import asyncio
import http
import logging
import threading
import time
from typing import Any

from . import wire
from .errors import InputError, RuntimeConfigError

log = logging.getLogger("vla_runtime.server")
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a 1280x720 RGB frame is 2.8 MB


class PolicyServer:
    def __init__(
        self, policy, host: str = "127.0.0.1", port: int = 8000, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ):
        self.policy, self.host, self.port, self.max_message_bytes = policy, host, port, max_message_bytes
        self._lock = threading.Lock()
        self._server = None

    # -- HTTP health endpoint, answered before the websocket handshake --------------------------
    def _process_request(self, connection, request):
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        return None

    def _run_locked(self, fn, *args):
        with self._lock:
            return fn(*args)

    async def _handle(self, connection):
        session = self.policy.fork()
        await connection.send(wire.packb({"type": "metadata", **self.policy.metadata()}))
        loop = asyncio.get_running_loop()
        async for raw in connection:
            t0 = time.perf_counter()
            try:
                msg = wire.unpackb(raw)
                if not isinstance(msg, dict) or "type" not in msg:
                    raise wire.WireError("message must be a map with a 'type' key ('reset' or 'step')")
                kind = msg["type"]
                reply: dict[str, Any]
                if kind == "reset":
                    await loop.run_in_executor(None, self._run_locked, session.reset, msg.get("instruction"))
                    reply = {"type": "reset_ok"}
                elif kind == "step":
                    if "image" not in msg:
                        raise wire.WireError("a 'step' message needs an 'image' array (uint8 H x W x 3)")
                    t1 = time.perf_counter()
                    action = await loop.run_in_executor(None, self._run_locked, session.step, msg["image"])
                    reply = {
                        "type": "action",
                        "action": action.astype("float32"),
                        "infer_ms": (time.perf_counter() - t1) * 1e3,
                    }
                else:
                    raise wire.WireError(f"unknown message type {kind!r}; use 'reset' or 'step'")
            except (wire.WireError, InputError, RuntimeConfigError) as err:
                reply = {"type": "error", "message": f"{type(err).__name__}: {err}"}
            except Exception as err:  # one bad request must not take the server down
                log.exception("request failed")
                reply = {"type": "error", "message": f"internal error: {type(err).__name__}: {err}"}
            timing: dict[str, Any] = {"server_ms": (time.perf_counter() - t0) * 1e3}
            if "infer_ms" in reply:
                timing["infer_ms"] = reply.pop("infer_ms")
            reply["timing"] = timing
            await connection.send(wire.packb(reply))

    async def start(self):
        """Starts listening; returns the bound port (useful with port=0)."""
        from websockets.asyncio.server import serve

        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            max_size=self.max_message_bytes,
            process_request=self._process_request,
            compression=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def serve_forever(self):
        if self._server is None:
            await self.start()
        log.info("serving on ws://%s:%d (health: http://%s:%d/healthz)", self.host, self.port, self.host, self.port)
        assert self._server is not None  # start() set it
        await self._server.serve_forever()

    async def close(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class BackgroundServer:
    """Runs a `PolicyServer` on its own event loop thread (tests, notebooks, a ROS node)."""

    def __init__(self, policy, host: str = "127.0.0.1", port: int = 0, **kwargs):
        self.server = PolicyServer(policy, host, port, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BackgroundServer:
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self.server.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="vla-runtime-server", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("policy server did not start within 30 s")
        return self

    @property
    def url(self) -> str:
        return f"ws://{self.server.host}:{self.server.port}"

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
