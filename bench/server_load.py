"""Policy server under load: p50/p99 latency and server memory (RSS) for two loads.

    python -m bench.server_load            # the small benchmark model (about 2 minutes on 2 cores)
    python -m bench.server_load --quick    # the tiny test model (smoke test)

Each load gets a fresh `vla-runtime serve` subprocess (default limits, ``--threads 1``) on
127.0.0.1, so its peak RSS (``VmHWM`` from /proc) belongs to that load alone:

* ``many_clients``: 20 clients x 20 requests each (reset, then steps with a 640x480 frame), all at
  once. Latency is the client's round trip; the server's reply splits it into queue and compute.
* ``pipelining``: one client sends 16 frames without waiting for replies (1280x720, and 16 MiB
  frames of 2300x2300 that are over the pixel limit), while a well-behaved client runs 20
  requests; its latency shows what the pipelining client costs the others.

The model: `runtime/tests/runtime_helpers.write_small_export` (vision 4x256 at 112 px, text 4x512,
window 8, policy head + LSTM; random weights), the same size bench/runtime_latency.py times.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from bench import common

RUNTIME_TESTS = common.repo_root() / "runtime" / "tests"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kib(pid: int) -> dict:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields


class Server:
    """`vla-runtime serve` in a subprocess, ready once /healthz answers."""

    def __init__(self, export: str, *extra: str):
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vla_runtime.cli",
                "serve",
                export,
                "--port",
                str(self.port),
                "--threads",
                "1",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        import urllib.request

        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                    break
            except OSError as err:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"server did not start: {self.proc.stderr.read()[-2000:]}") from err
                time.sleep(0.2)
        self.url = f"ws://127.0.0.1:{self.port}"
        self.idle = _rss_kib(self.proc.pid)

    def close(self) -> dict:
        mem = _rss_kib(self.proc.pid)
        self.proc.terminate()
        self.proc.wait(30)
        return {"idle_rss_mib": self.idle["VmRSS"] / 1024, "peak_rss_mib": mem["VmHWM"] / 1024}


def _percentiles(ms: list[float]) -> dict:
    if not ms:
        return {"n": 0}
    a = np.asarray(ms)
    return {
        "n": int(a.size),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
    }


def _client_loop(
    url: str, requests: int, frame: np.ndarray, out: dict, start: threading.Event, until: threading.Event | None = None
) -> None:
    """``requests`` steps (and more, while ``until`` is not set) after ``start``."""
    from vla_runtime.client import PolicyClient, PolicyError

    with PolicyClient(url, timeout=300) as client:
        client.reset("Navigate around the obstacle on the left side and reach the target")
        start.wait()
        done = 0
        while done < requests or (until is not None and not until.is_set()):
            done += 1
            t0 = time.perf_counter()
            try:
                _, timing = client.step(frame)
            except PolicyError as err:
                out.setdefault("errors", []).append(err.code)
                continue
            out.setdefault("round_trip", []).append((time.perf_counter() - t0) * 1e3)
            out.setdefault("queue", []).append(timing["queue_ms"])
            out.setdefault("infer", []).append(timing["infer_ms"])


def _run_clients(url: str, clients: int, requests: int, frame: np.ndarray, until=None) -> dict:
    results = [{} for _ in range(clients)]
    start = threading.Event()
    threads = [threading.Thread(target=_client_loop, args=(url, requests, frame, r, start, until)) for r in results]
    for t in threads:
        t.start()
    time.sleep(0.5)  # every client connected and reset
    t0 = time.perf_counter()
    start.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    merged = {k: [v for r in results for v in r.get(k, [])] for k in ("round_trip", "queue", "infer", "errors")}
    return {
        "clients": clients,
        "requests_each": requests,
        "wall_s": wall,
        "throughput_steps_per_s": len(merged["round_trip"]) / wall,
        "round_trip": _percentiles(merged["round_trip"]),
        "queue": _percentiles(merged["queue"]),
        "infer": _percentiles(merged["infer"]),
        "errors": {code: merged["errors"].count(code) for code in sorted(set(merged["errors"]))},
    }


def _pipeline(url: str, frames: list[np.ndarray]) -> dict:
    """Sends every frame without waiting, then reads every reply; counts the reply types."""
    from websockets.sync.client import connect

    from vla_runtime import wire

    with connect(url, compression=None, max_size=2**25, open_timeout=60) as ws:
        wire.unpackb(ws.recv(timeout=60))
        ws.send(wire.packb({"type": "reset", "instruction": "go left"}))
        wire.unpackb(ws.recv(timeout=60))
        t0 = time.perf_counter()
        for i, frame in enumerate(frames):
            ws.send(wire.packb({"type": "step", "image": frame, "id": i}))
        replies = [wire.unpackb(ws.recv(timeout=300)) for _ in frames]
    kinds = [r.get("code", r["type"]) for r in replies]
    return {
        "sent": len(frames),
        "frame_shape": list(frames[0].shape),
        "frame_mib": frames[0].nbytes / 2**20,
        "replies": {k: kinds.count(k) for k in sorted(set(kinds))},
        "all_replies_s": time.perf_counter() - t0,
    }


def run(args) -> dict:
    sys.path.insert(0, str(RUNTIME_TESTS))
    import runtime_helpers

    rng = np.random.default_rng(0)
    clients, requests, burst = (4, 3, 4) if args.quick else (20, 20, 16)
    camera = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory(prefix="bench_server_") as tmp:
        export = os.path.join(tmp, "export")
        if args.quick:
            runtime_helpers.write_tiny_export(export)
        else:
            runtime_helpers.write_small_export(export)

        server = Server(export)
        many = _run_clients(server.url, clients, requests, camera)
        many["memory"] = server.close()

        server = Server(export)
        hd = [rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)] * burst
        huge = [rng.integers(0, 256, (2300, 2300, 3), dtype=np.uint8)] * burst
        bystander: dict = {}
        done = threading.Event()

        def attack():
            bystander["pipelined_hd"] = _pipeline(server.url, hd)
            bystander["pipelined_huge"] = _pipeline(server.url, huge)
            done.set()

        attacker = threading.Thread(target=attack)
        attacker.start()
        bystander["bystander"] = _run_clients(server.url, 1, requests, camera, until=done)
        attacker.join()
        bystander["memory"] = server.close()

    by = bystander["bystander"]
    rows = [
        [
            "many_clients",
            f"{clients}x{requests}",
            many["round_trip"]["p50_ms"],
            many["round_trip"]["p99_ms"],
            many["queue"]["p50_ms"],
            many["infer"]["p50_ms"],
            many["memory"]["idle_rss_mib"],
            many["memory"]["peak_rss_mib"],
        ],
        [
            "pipelining (bystander)",
            f"1x{by['round_trip']['n']}",
            by["round_trip"]["p50_ms"],
            by["round_trip"]["p99_ms"],
            by["queue"]["p50_ms"],
            by["infer"]["p50_ms"],
            bystander["memory"]["idle_rss_mib"],
            bystander["memory"]["peak_rss_mib"],
        ],
    ]
    common.print_table(
        "policy server, 127.0.0.1, torch 1 thread",
        [
            "load",
            "clients x requests",
            "p50 ms",
            "p99 ms",
            "queue p50 ms",
            "infer p50 ms",
            "idle RSS MiB",
            "peak RSS MiB",
        ],
        rows,
    )
    return {
        "benchmark": "server_load",
        "quick": bool(args.quick),
        "machine": common.machine_info({"server_torch_threads": 1}),
        "model": "runtime_helpers.write_tiny_export" if args.quick else "runtime_helpers.write_small_export",
        "many_clients": many,
        "pipelining": bystander,
    }


def main(argv=None) -> int:
    p = common.parser("server_load", __doc__.splitlines()[0])
    args = p.parse_args(argv)
    common.write_result(args.out, run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
