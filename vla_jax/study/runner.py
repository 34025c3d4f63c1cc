"""Run planned steps one after another, each as its own `vla-jax` process; resumable through markers.

A step's key is a hash of its argv (paths inside this checkout taken relative to it) and its dependencies'
keys, so a changed command, or a changed step
upstream of it, changes the key. ``OUT/.study/ID.json`` (the DONE marker: argv, key, wall and CPU seconds) is
written only after the step exited 0; a step whose marker holds its current key is skipped. A step that
reruns starts from a removed output folder, except a `train` step whose interrupted attempt had the same
key (``OUT/.study/ID.started``): that one resumes its workdir from the latest checkpoint, as
`vla-jax train` does. Each step's stdout and stderr go to ``OUT/logs/ID.log``.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from vla_jax.errors import VLAJaxError
from vla_jax.study.plan import PlannedStep

MARKERS = ".study"
LOGS = "logs"
# Study configs name files of this checkout by absolute path (configs/demo.py, a registry file); a key sees them
# relative to it, so moving or re-cloning the checkout does not invalidate a finished study.
CHECKOUT = str(Path(__file__).resolve().parents[2]) + os.sep


def _portable(arg: str) -> str:
    return arg.replace(CHECKOUT, "<checkout>/")


def step_keys(steps: Sequence[PlannedStep], every: Sequence[PlannedStep] | None = None) -> dict[str, str]:
    """id -> key for ``steps``; dependencies are looked up in ``every`` (default: ``steps``)."""
    by_id = {s.id: s for s in (every or steps)}
    keys: dict[str, str] = {}

    def key(step: PlannedStep) -> str:
        if step.id not in keys:
            payload = json.dumps([[_portable(a) for a in step.argv], [key(by_id[d]) for d in step.deps]])
            keys[step.id] = hashlib.sha256(payload.encode()).hexdigest()[:16]
        return keys[step.id]

    for step in steps:
        key(step)
    return keys


def marker_path(out: Path, step_id: str, suffix: str = ".json") -> Path:
    return out / MARKERS / f"{step_id}{suffix}"


def log_path(out: Path, step_id: str) -> Path:
    return out / LOGS / f"{step_id}.log"


def read_marker(out: Path, step_id: str) -> dict | None:
    path = marker_path(out, step_id)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:  # a torn write: not finished
        return None


def status(out: Path, step: PlannedStep, key: str) -> str:
    """done (finished with this key), changed (finished with another key) or pending."""
    marker = read_marker(out, step.id)
    if marker is None:
        return "pending"
    return "done" if marker.get("key") == key else "changed"


def _prepare(out: Path, step: PlannedStep, key: str, state: str) -> None:
    """Clear what a rerun must not inherit; keep a train workdir whose last attempt had this key (resume)."""
    marker_path(out, step.id).unlink(missing_ok=True)
    started = marker_path(out, step.id, ".started")
    resume = state == "pending" and step.command == "train" and started.is_file() and started.read_text() == key
    if step.dir.exists() and not resume:
        shutil.rmtree(step.dir)
    started.parent.mkdir(parents=True, exist_ok=True)
    started.write_text(key)
    step.dir.parent.mkdir(parents=True, exist_ok=True)


Launcher = Callable[[Sequence[str], IO[str], Mapping[str, str]], int]


def launch_subprocess(argv: Sequence[str], log: IO[str], env: Mapping[str, str]) -> int:
    """`vla-jax ARGV` in its own process (as `vla-jax demo` runs its stages): TensorFlow, JAX, torch and
    MuJoCo stay out of each other's way and each step returns its memory to the system."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vla_jax.cli", *argv],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    try:
        return proc.wait()
    except BaseException:  # interrupted or terminated: stop the step too (a train step saves, then exits)
        proc.terminate()
        proc.wait()
        raise


def run_one(
    out: Path, step: PlannedStep, key: str, env: Mapping[str, str], launch: Launcher = launch_subprocess
) -> tuple[int, float]:
    """Run the step's command (its output to its log); on exit 0 write its DONE marker. (exit code, seconds)."""
    _prepare(out, step, key, status(out, step, key))
    log = log_path(out, step.id)
    log.parent.mkdir(parents=True, exist_ok=True)
    start, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "w") as handle:
        handle.write(f"$ vla-jax {' '.join(step.argv)}\n")
        handle.flush()
        code = launch(step.argv, handle, env)
    seconds = round(time.perf_counter() - start, 1)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the step's process: on a shared machine a better size estimate than wall time.
    cpu = round(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime, 1)
    if code == 0:
        record = {
            "id": step.id,
            "argv": list(step.argv),
            "key": key,
            "wall_seconds": seconds,
            "cpu_seconds": cpu,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        marker = marker_path(out, step.id)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        tmp.replace(marker)
        marker_path(out, step.id, ".started").unlink(missing_ok=True)
    return code, seconds


def run_steps(
    out: Path,
    steps: Sequence[PlannedStep],
    keys: Mapping[str, str],
    env: Mapping[str, str],
    say: Callable[[str], None] = print,
    launch: Launcher = launch_subprocess,
) -> int:
    """Every step in order, skipping finished ones; stop at the first failure with one line. Exit code."""
    start = time.perf_counter()
    for i, step in enumerate(steps, 1):
        tag = f"[study] {i}/{len(steps)} {step.id}"
        state = status(out, step, keys[step.id])
        if state == "done":
            say(f"{tag}: done, skipped")
            continue
        say(f"{tag}: running{' (changed: rerun from scratch)' if state == 'changed' else ''}")
        code, seconds = run_one(out, step, keys[step.id], env, launch)
        if code != 0:
            say(f"study: step {step.id} failed (exit {code}); log: {log_path(out, step.id)}")
            return 1
        say(f"{tag}: ok in {seconds:.1f} s (study {time.perf_counter() - start:.0f} s)")
    return 0


def require_deps_done(out: Path, step: PlannedStep, keys: Mapping[str, str]) -> None:
    """For a single step (an emitted job): its dependencies must have finished with their current keys."""
    missing = [d for d in step.deps if (read_marker(out, d) or {}).get("key") != keys[d]]
    if missing:
        raise VLAJaxError(f"step {step.id}: dependencies not finished: {', '.join(missing)}; run them first")
