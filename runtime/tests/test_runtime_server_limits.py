"""The policy server's bounds: connections, in-flight requests, frame pixels, non-finite actions, CLI errors.

Everything on 127.0.0.1 with a random free port; a slow stand-in session makes "in flight" last long
enough to be deterministic.
"""

import logging
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from runtime_helpers import write_tiny_export
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from vla_runtime import NonFiniteActionError, Policy, wire
from vla_runtime.client import PolicyClient, PolicyError
from vla_runtime.server import BackgroundServer, Limits

FRAME = np.zeros((20, 20, 3), np.uint8)


class SlowPolicy:
    """Forks sessions whose step takes `delay` seconds (so requests stay in flight)."""

    def __init__(self, policy, delay):
        self.policy, self.delay = policy, delay
        self.preprocessing = policy.preprocessing

    def metadata(self):
        return self.policy.metadata()

    def fork(self):
        session = self.policy.fork()
        step = session.step

        def slow_step(image):
            time.sleep(self.delay)
            return step(image)

        session.step = slow_step
        return session


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    return Policy.load(write_tiny_export(str(tmp_path_factory.mktemp("lim") / "export")))


def _raw(url):
    ws = connect(url, compression=None, max_size=2**24)
    assert wire.unpackb(ws.recv(timeout=10))["type"] == "metadata"
    return ws


def _send(ws, **msg):
    ws.send(wire.packb(msg))


def _recv(ws):
    return wire.unpackb(ws.recv(timeout=10))


def test_connections_over_the_limit_get_an_error_reply_and_1013(policy):
    with BackgroundServer(policy, limits=Limits(max_connections=2)) as srv:
        first, second = PolicyClient(srv.url), PolicyClient(srv.url)
        with pytest.raises(PolicyError) as info:
            PolicyClient(srv.url)
        assert info.value.code == "busy" and "max_connections 2" in str(info.value)
        first.close()
        time.sleep(0.2)
        third = PolicyClient(srv.url)  # a freed slot is usable again
        third.reset("go left")
        assert third.step(FRAME)[0].shape == (2, 3)
        for c in (second, third):
            c.close()
        assert srv.server.refused["connections"] == 1


def test_pipelined_requests_beyond_the_limit_are_answered_busy_not_queued(policy, caplog):
    with BackgroundServer(SlowPolicy(policy, 0.3)) as srv:
        ws = _raw(srv.url)
        _send(ws, type="reset", instruction="go left")
        assert _recv(ws)["type"] == "reset_ok"
        with caplog.at_level(logging.WARNING, logger="vla_runtime.server"):
            for i in range(4):
                _send(ws, type="step", image=FRAME, id=i)
            replies = {r["id"]: r for r in (_recv(ws) for _ in range(4))}
        assert replies[0]["type"] == "action"
        for i in (1, 2, 3):
            assert replies[i]["type"] == "error" and replies[i]["code"] == "busy"
            assert "max_inflight_per_connection 1): wait for the reply" in replies[i]["message"]
        busy_lines = [r for r in caplog.records if "busy" in r.getMessage()]
        assert len(busy_lines) == 3 and all(r.exc_info is None for r in busy_lines)
        # Queueing is separated from compute: the first request computed for >= 0.3 s and waited ~0.
        timing = replies[0]["timing"]
        assert timing["infer_ms"] >= 290 and timing["queue_ms"] < 100
        assert timing["server_ms"] >= timing["infer_ms"]
        ws.close()


def test_total_inflight_limit_spans_connections(policy):
    with BackgroundServer(SlowPolicy(policy, 0.5), limits=Limits(max_inflight_total=1)) as srv:
        a, b = _raw(srv.url), _raw(srv.url)
        for ws in (a, b):
            _send(ws, type="reset", instruction="go left")
            assert _recv(ws)["type"] == "reset_ok"
        _send(a, type="step", image=FRAME)
        time.sleep(0.1)
        _send(b, type="step", image=FRAME)
        reply_b = _recv(b)
        assert reply_b["code"] == "busy" and "max_inflight_total 1" in reply_b["message"]
        assert _recv(a)["type"] == "action"
        _send(b, type="step", image=FRAME)
        assert _recv(b)["type"] == "action"
        a.close()
        b.close()


def test_queue_time_is_reported_separately(policy):
    """Two clients, one model thread: the second waits for the first; its queue_ms says so."""
    with BackgroundServer(SlowPolicy(policy, 0.3)) as srv:
        clients = [PolicyClient(srv.url) for _ in range(2)]
        for c in clients:
            c.reset("go left")
        timings = []

        def run(c):
            timings.append(c.step(FRAME)[1])

        threads = [threading.Thread(target=run, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        queued = sorted(t["queue_ms"] for t in timings)
        assert queued[0] < 100 and queued[1] >= 200, timings
        for c in clients:
            c.close()


def test_frames_over_max_pixels_are_refused_before_preprocessing(policy):
    with BackgroundServer(policy, limits=Limits(max_pixels=64 * 64)) as srv:
        with PolicyClient(srv.url) as client:
            client.reset("go left")
            with pytest.raises(PolicyError) as info:
                client.step(np.zeros((1000, 5, 3), np.uint8))  # tall: few bytes, many pixels
            assert info.value.code == "too_large" and "5000 pixels" in str(info.value)
            assert client.step(np.zeros((64, 64, 3), np.uint8))[0].shape == (2, 3)
        with PolicyClient(srv.url) as client:  # few pixels, but one side that costs a slow resize
            client.reset("go left")
            with pytest.raises(PolicyError, match="frame of 5000x2 has a side over the server's max_side 4096"):
                client.step(np.zeros((5000, 2, 3), np.uint8))


def test_oversize_message_closes_that_connection_with_one_log_line(policy, caplog):
    with BackgroundServer(policy, limits=Limits(max_message_bytes=64 * 1024)) as srv:
        with caplog.at_level(logging.WARNING, logger="vla_runtime.server"):
            with PolicyClient(srv.url) as client:
                client.reset("go left")
                with pytest.raises(ConnectionClosed):  # the server closed it (1009): no reply to read
                    client.step(np.zeros((200, 200, 3), np.uint8))
            time.sleep(0.2)
        lines = [r for r in caplog.records if "max_message_bytes" in r.getMessage()]
        assert len(lines) == 1 and "1009" in lines[0].getMessage() and lines[0].exc_info is None
        with PolicyClient(srv.url) as client:
            client.reset("go left")
            assert client.step(FRAME)[0].shape == (2, 3)


def test_malformed_messages_get_error_replies_and_one_log_line_each(policy, caplog):
    with BackgroundServer(policy) as srv:
        with caplog.at_level(logging.WARNING, logger="vla_runtime.server"):
            with PolicyClient(srv.url) as client:
                for raw in (
                    b"\xc1 not msgpack",
                    wire.packb([1, 2]),
                    wire.packb({"type": "step"}),
                    wire.packb({"type": "reset", "instruction": 7}),
                ):
                    reply = client.send_raw(raw)
                    assert reply["type"] == "error" and reply["code"] == "bad_request"
                client.reset("go left")
                assert client.step(FRAME)[0].shape == (2, 3)
        assert len([r for r in caplog.records if "bad_request" in r.getMessage()]) == 4
        assert all(r.exc_info is None for r in caplog.records)


def test_non_finite_action_is_an_error_reply_the_client_raises_as_non_finite(policy, tmp_path):
    bad = Policy.load(write_tiny_export(str(tmp_path / "bad")))
    with torch.no_grad():
        dict(bad.model.named_parameters())["head.readout.out.bias"][0] = float("nan")
    with BackgroundServer(bad) as srv:
        with PolicyClient(srv.url) as client:
            client.reset("go left")
            with pytest.raises(NonFiniteActionError) as info:
                client.step(FRAME)
            assert info.value.code == "non_finite_action"


def test_truncated_instruction_warning_reaches_the_client(policy):
    with BackgroundServer(policy) as srv:
        with PolicyClient(srv.url) as client:
            assert client.reset("go left") is None
            assert "longer than the model's" in client.reset("go left and then right " * 500)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--max-message-mb", "0"], "--max-message-mb must be >= 1"),
        (["--port", "70000"], "--port must be 0..65535"),
        (["--port", "-1"], "--port must be >= 0"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--max-connections", "0"], "--max-connections must be >= 1"),
    ],
)
def test_serve_refuses_nonsense_arguments(args, needle, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "vla_runtime.cli", "serve", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "203.0.113.7"])  # busy port; an address not on this machine
def test_serve_on_a_busy_port_or_foreign_address_is_one_line(policy, tmp_path, host):
    export = write_tiny_export(str(tmp_path / "export"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "vla_runtime.cli", "serve", export, "--host", host, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"vla-runtime serve: error: cannot listen on {host}:{port}")
