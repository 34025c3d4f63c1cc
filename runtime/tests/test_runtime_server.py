"""Policy server on 127.0.0.1 (random free port): metadata, health, good and malformed frames, size limit."""

import urllib.request

import numpy as np
import pytest
from runtime_helpers import write_tiny_export

from vla_runtime import Policy, wire
from vla_runtime.client import PolicyClient, PolicyError
from vla_runtime.server import BackgroundServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    export = write_tiny_export(str(tmp_path_factory.mktemp("srv") / "export"))
    with BackgroundServer(Policy.load(export), port=0, max_message_bytes=64 * 1024) as srv:
        yield srv, export


def test_round_trip_matches_local_policy(server):
    srv, export = server
    assert srv.server.host == "127.0.0.1"
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.server.port}/healthz", timeout=10) as resp:
        assert resp.status == 200 and resp.read() == b"ok\n"
    local = Policy.load(export)
    local.reset("go left")
    frames = [np.random.default_rng(i).integers(0, 256, (40, 60, 3), dtype=np.uint8) for i in range(3)]
    with PolicyClient(srv.url) as client:
        assert client.metadata["structure"] == "policy_head" and client.metadata["action_chunk"] == 2
        client.reset("go left")
        for frame in frames:
            action, timing = client.step(frame)
            np.testing.assert_allclose(action, local.step(frame), atol=1e-6)
            assert action.dtype == np.float32 and action.shape == (2, 3)
            assert timing["server_ms"] >= timing["infer_ms"] > 0


def test_bad_frames_get_errors_and_server_survives(server):
    srv, _ = server
    with PolicyClient(srv.url) as client:
        assert "not a msgpack message" in client.send_raw(b"\xc1\xc1 not msgpack")["message"]
        reply = client.send_raw(
            wire.packb(
                {"type": "step", "image": {"__ndarray__": True, "dtype": "<f4", "shape": [8, 8, 3], "data": b"xx"}}
            )
        )
        assert reply["type"] == "error" and "bytes" in reply["message"]
        with pytest.raises(PolicyError, match="reset"):
            client.step(np.zeros((8, 8, 3), np.uint8))
        client.reset("go right")
        with pytest.raises(PolicyError, match="dtype"):
            client.step(np.zeros((8, 8, 3), np.float32))
        with pytest.raises(PolicyError, match="unknown message type"):
            client.request({"type": "launch"})
        action, _ = client.step(np.zeros((30, 30, 3), np.uint8))  # the same connection still works
        assert action.shape == (2, 3)
    # Over the size limit: that connection is closed by the server; the next one is served.
    with PolicyClient(srv.url) as client:
        client.reset("go right")
        with pytest.raises(Exception):  # noqa: B017 - the close surfaces as websockets' or the client's error
            client.step(np.zeros((200, 200, 3), np.uint8))
    with PolicyClient(srv.url) as client:
        client.reset("go right")
        assert client.step(np.zeros((30, 30, 3), np.uint8))[0].shape == (2, 3)
