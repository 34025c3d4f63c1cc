"""A small synchronous client for `vla-runtime serve` (what a ROS 2 node or a simulator loop calls)."""

from __future__ import annotations

import numpy as np

from . import wire
from .errors import NonFiniteActionError
from .server import DEFAULT_MAX_MESSAGE_BYTES


class PolicyError(RuntimeError):
    """The server answered a request with an error message; ``code`` is the protocol's error code."""

    def __init__(self, message: str, code: str = "error"):
        super().__init__(message)
        self.code = code


class RemoteNonFiniteAction(PolicyError, NonFiniteActionError):
    """The served policy produced a non-finite action: catch `NonFiniteActionError` and stop the robot."""


class PolicyClient:
    def __init__(
        self,
        url: str = "ws://127.0.0.1:8000",
        timeout: float = 30.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ):
        from websockets.sync.client import connect

        self._ws = connect(
            url, max_size=max_message_bytes, open_timeout=timeout, close_timeout=timeout, compression=None
        )
        self.timeout = timeout
        self.metadata: dict = self._recv()
        if self.metadata.get("type") == "error":  # e.g. the server is at its connection limit
            self._ws.close()
            raise PolicyError(self.metadata.get("message", "refused"), self.metadata.get("code", "error"))
        if self.metadata.get("type") != "metadata":
            raise PolicyError(f"expected metadata on connect, got {self.metadata.get('type')!r}")

    def _recv(self) -> dict:
        return wire.unpackb(self._ws.recv(timeout=self.timeout))  # pyright: ignore[reportArgumentType]  (binary frames only)

    def request(self, message: dict) -> dict:
        self._ws.send(wire.packb(message))
        reply = self._recv()
        if reply.get("type") == "error":
            code = reply.get("code", "error")
            cls = RemoteNonFiniteAction if code == "non_finite_action" else PolicyError
            raise cls(reply.get("message", "unknown error"), code)
        return reply

    def send_raw(self, data: bytes) -> dict:
        """Sends bytes as they are (for testing a server's handling of bad frames)."""
        self._ws.send(data)
        return self._recv()

    def reset(self, instruction: str) -> str | None:
        """Starts an episode; returns the server's warning (e.g. the instruction was truncated) or None."""
        return self.request({"type": "reset", "instruction": instruction}).get("warning")

    def step(self, image: np.ndarray) -> tuple[np.ndarray, dict]:
        """-> (action chunk [C, A] in robot units, timing dict in milliseconds)."""
        reply = self.request({"type": "step", "image": np.asarray(image)})
        return reply["action"], reply["timing"]

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
