"""Websocket policy server: one `Policy` per connection, msgpack-numpy frames, /healthz over HTTP.

Protocol (every message is a msgpack map, arrays as in `wire`):

    server -> client on connect:  {"type": "metadata", ...export config summary...}
    client: {"type": "reset", "instruction": str}   -> {"type": "reset_ok", "timing": {...}[, "warning": str]}
    client: {"type": "step", "image": uint8 [H, W, 3]} -> {"type": "action", "action": f32 [C, A], "timing": {...}}
    anything wrong -> {"type": "error", "code": CODE, "message": str}  (the connection stays open)

A request may carry an ``"id"``; its reply echoes it. ``timing`` (milliseconds) splits
``queue_ms`` (waiting for the model), ``infer_ms`` (the model) and ``server_ms`` (receipt to reply).

Bounded, never queued without limit (`Limits`): more than ``max_connections`` clients get an
error reply and close code 1013 (try again later); a request arriving while its connection
already has ``max_inflight_per_connection`` requests, or the server ``max_inflight_total``, is
answered at once with code ``busy``; a frame over ``max_pixels`` or ``max_side`` gets ``too_large`` before any
preprocessing; a message over ``max_message_bytes`` is refused by the websocket layer, which
closes that connection with 1009 as the protocol requires. Each refusal is one log line.

Error codes: ``bad_request`` (malformed message or input), ``busy``, ``too_large``,
``non_finite_action`` (the policy produced NaN/inf: nothing to execute; stop the robot and
reset), ``internal`` (a bug: logged with its traceback).

Each connection gets its own episode state (`Policy.fork`) over shared weights; one inference
thread runs the model (it runs one batch at a time), so queueing is explicit and measured.
Binds to 127.0.0.1 unless told otherwise: a robot's policy port should not be on the network by accident.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import http
import logging
import threading
import time
from typing import Any

import numpy as np

from . import wire
from .errors import InputError, NonFiniteActionError, RuntimeConfigError

log = logging.getLogger("vla_runtime.server")
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a 1280x720 RGB frame is 2.8 MB
TRY_AGAIN_LATER = 1013  # websocket close code for "server overloaded"


@dataclasses.dataclass(frozen=True)
class Limits:
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_pixels: int = 1920 * 1080  # a full-HD frame; larger ones cost seconds of resizing for nothing
    # Longest side: a 1036800 x 2 frame is within max_pixels but takes 0.63 s to resize (measured; a
    # 1080p frame 63 ms, a 4096 x 506 one 26 ms), all of it holding the model thread.
    max_side: int = 4096
    max_connections: int = 32
    max_inflight_per_connection: int = 1  # strict request/reply: a pipelined request is answered "busy"
    max_inflight_total: int = 32

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RuntimeConfigError(f"server limit {field.name}={value!r} must be an integer >= 1")


class RequestError(Exception):
    """A request refused with an error reply; ``code`` is one of the protocol's error codes."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def peek_id(raw) -> Any:
    """The request's ``id`` if it has one (for a reply sent without processing the request)."""
    try:
        msg = wire.unpackb(raw)
    except wire.WireError:
        return None
    return msg.get("id") if isinstance(msg, dict) else None


def error_reply(code: str, message: str, request_id: Any = None) -> dict:
    reply = {"type": "error", "code": code, "message": message}
    if request_id is not None:
        reply["id"] = request_id
    return reply


class PolicyServer:
    def __init__(
        self,
        policy,
        host: str = "127.0.0.1",
        port: int = 8000,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        limits: Limits | None = None,
    ):
        self.policy, self.host, self.port = policy, host, port
        self.limits = limits or Limits(max_message_bytes=max_message_bytes)
        self.max_message_bytes = self.limits.max_message_bytes
        self._model = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vla-runtime-model")
        self._server = None
        self.connections = 0
        self.inflight = 0
        self.refused = {"connections": 0, "busy": 0, "too_large": 0, "bad_request": 0, "oversize_message": 0}

    # -- HTTP health endpoint, answered before the websocket handshake --------------------------
    def _process_request(self, connection, request):
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        return None

    async def _in_model_thread(self, fn, *args):
        """(result, queue seconds, compute seconds): time waiting for the model thread vs in it."""
        submitted = time.perf_counter()
        started = []

        def run():
            started.append(time.perf_counter())
            return fn(*args)

        result = await asyncio.get_running_loop().run_in_executor(self._model, run)
        done = time.perf_counter()
        return result, started[0] - submitted, done - started[0]

    def _check_frame_size(self, image) -> None:
        if isinstance(image, np.ndarray) and image.ndim >= 2:
            pixels = int(image.shape[0]) * int(image.shape[1])
            side = max(int(image.shape[0]), int(image.shape[1]))
            if side > self.limits.max_side:
                raise RequestError(
                    "too_large",
                    f"frame of {image.shape[0]}x{image.shape[1]} has a side over the "
                    f"server's max_side {self.limits.max_side}; resize it on the robot",
                )
            if pixels > self.limits.max_pixels:
                raise RequestError(
                    "too_large",
                    f"frame of {image.shape[0]}x{image.shape[1]} = {pixels} pixels is "
                    f"over the server's max_pixels {self.limits.max_pixels}; resize "
                    "it on the robot (the model sees "
                    f"{'x'.join(map(str, self.policy.preprocessing.image_size))})",
                )

    async def _answer(self, session, raw: bytes) -> dict:
        request_id = None
        try:
            msg = wire.unpackb(raw)
            if not isinstance(msg, dict) or "type" not in msg:
                raise wire.WireError("message must be a map with a 'type' key ('reset' or 'step')")
            request_id = msg.get("id")
            kind = msg["type"]
            reply: dict[str, Any]
            if kind == "reset":
                _, queued, compute = await self._in_model_thread(session.reset, msg.get("instruction"))
                reply = {"type": "reset_ok"}
                if session.instruction_warning:
                    reply["warning"] = session.instruction_warning
            elif kind == "step":
                if "image" not in msg:
                    raise wire.WireError("a 'step' message needs an 'image' array (uint8 H x W x 3)")
                self._check_frame_size(msg["image"])
                action, queued, compute = await self._in_model_thread(session.step, msg["image"])
                reply = {"type": "action", "action": action.astype("float32")}
            else:
                raise wire.WireError(f"unknown message type {kind!r}; use 'reset' or 'step'")
            reply["timing"] = {"queue_ms": queued * 1e3, "infer_ms": compute * 1e3}
        except (wire.WireError, InputError, RuntimeConfigError) as err:
            return error_reply("bad_request", f"{type(err).__name__}: {err}", request_id)
        except RequestError as err:
            return error_reply(err.code, str(err), request_id)
        except NonFiniteActionError as err:
            return error_reply("non_finite_action", str(err), request_id)
        except Exception as err:  # a bug: keep serving the others, keep the traceback for the log
            log.exception("request failed")
            return error_reply("internal", f"internal error: {type(err).__name__}: {err}", request_id)
        if request_id is not None:
            reply["id"] = request_id
        return reply

    async def _reply(self, connection, peer: str, reply: dict, received: float) -> None:
        reply.setdefault("timing", {})["server_ms"] = (time.perf_counter() - received) * 1e3
        if reply["type"] == "error" and reply["code"] != "internal":
            self.refused[reply["code"]] = self.refused.get(reply["code"], 0) + 1
            log.warning("%s: %s: %s", peer, reply["code"], reply["message"])
        await connection.send(wire.packb(reply))

    async def _work(self, connection, peer: str, session, queue: asyncio.Queue, pending: list) -> None:
        from websockets.exceptions import ConnectionClosed

        while True:
            raw, received = await queue.get()
            try:
                reply = await self._answer(session, raw)
            finally:
                # Released before the reply goes out: a client that sends its next request the moment
                # it reads this reply must find the slot free.
                pending[0] -= 1
                self.inflight -= 1
            try:
                await self._reply(connection, peer, reply, received)
            except ConnectionClosed:  # the client left before its reply: nothing to send it to
                return

    async def _handle(self, connection):
        from websockets.exceptions import ConnectionClosed

        peer = "{}:{}".format(*connection.remote_address[:2]) if connection.remote_address else "client"
        if self.connections >= self.limits.max_connections:
            self.refused["connections"] += 1
            message = f"server is at max_connections {self.limits.max_connections}; try again later"
            log.warning("%s: refused: %s", peer, message)
            await connection.send(wire.packb(error_reply("busy", message)))
            await connection.close(TRY_AGAIN_LATER, "too many connections")
            return
        self.connections += 1
        pending = [0]  # this connection's requests received and not yet answered
        queue: asyncio.Queue = asyncio.Queue()
        worker = None
        try:
            session = self.policy.fork()
            await connection.send(wire.packb({"type": "metadata", **self.policy.metadata()}))
            worker = asyncio.create_task(self._work(connection, peer, session, queue, pending))
            async for raw in connection:
                received = time.perf_counter()
                if pending[0] >= self.limits.max_inflight_per_connection:
                    message = (
                        f"this connection already has {pending[0]} request(s) in flight (max_inflight_per_"
                        f"connection {self.limits.max_inflight_per_connection}): wait for the reply first"
                    )
                elif self.inflight >= self.limits.max_inflight_total:
                    message = (
                        f"the server has {self.inflight} requests in flight (max_inflight_total "
                        f"{self.limits.max_inflight_total}): retry shortly"
                    )
                else:
                    message = None
                if message is not None:
                    await self._reply(connection, peer, error_reply("busy", message, peek_id(raw)), received)
                    continue
                pending[0] += 1
                self.inflight += 1
                queue.put_nowait((raw, received))
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == 1009:
                self.refused["oversize_message"] += 1
                log.warning(
                    "%s: message over max_message_bytes %d: connection closed (1009, as the websocket "
                    "protocol requires)",
                    peer,
                    self.limits.max_message_bytes,
                )
        finally:  # requests still queued for a closed connection are dropped, not computed
            if worker is not None:
                worker.cancel()
            self.inflight -= queue.qsize()
            self.connections -= 1

    async def start(self):
        """Starts listening; returns the bound port (useful with port=0)."""
        from websockets.asyncio.server import serve

        # max_queue: frames websockets buffers before this server reads them. The reader answers
        # "busy" at once, so a small buffer bounds a pipelining client's memory at a few messages.
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            max_size=self.limits.max_message_bytes,
            max_queue=2,
            process_request=self._process_request,
            compression=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def serve_forever(self):
        if self._server is None:
            await self.start()
        log.info(
            "serving on ws://%s:%d (health: http://%s:%d/healthz); limits %s",
            self.host,
            self.port,
            self.host,
            self.port,
            dataclasses.asdict(self.limits),
        )
        assert self._server is not None  # start() set it
        await self._server.serve_forever()

    async def close(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._model.shutdown(wait=False, cancel_futures=True)


class BackgroundServer:
    """Runs a `PolicyServer` on its own event loop thread (tests, notebooks, a ROS node)."""

    def __init__(self, policy, host: str = "127.0.0.1", port: int = 0, **kwargs):
        self.server = PolicyServer(policy, host, port, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BackgroundServer:
        ready = threading.Event()
        failure = []

        def run():
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self.server.start())
            except BaseException as err:  # e.g. the port is taken: re-raised in the caller's thread
                failure.append(err)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="vla-runtime-server", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("policy server did not start within 30 s")
        if failure:
            raise failure[0]
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
