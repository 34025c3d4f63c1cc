"""Run planned steps in dependency order (one at a time or `jobs` side by side), each as its own `vla-jax`
process; resumable through markers.

A step's key is a hash of its argv (paths inside this checkout taken relative to it) and its dependencies'
keys, so a changed command, or a changed step
upstream of it, changes the key. ``OUT/.study/ID.json`` (the DONE marker: argv, key, wall and CPU seconds) is
written only after the step exited 0; a step whose marker holds its current key is skipped. A step that
reruns starts from a removed output folder, except a `train` step whose interrupted attempt had the same
key (``OUT/.study/ID.started``): that one resumes its workdir from the latest checkpoint, as
`vla-jax train` does. Each step's stdout and stderr go to ``OUT/logs/ID.log``.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from vla_jax.errors import VLAJaxError
from vla_jax.study.plan import PlannedStep

MARKERS = ".study"
RUNS = "runs.jsonl"  # one line per invocation that ran steps: its elapsed time (steps overlap with --jobs)
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


_RUNNING: set[subprocess.Popen] = set()
_RUNNING_LOCK = threading.Lock()
_STEP_CPU = threading.local()  # the CPU seconds of the step this thread launched last


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
    try:  # registered inside the try: an interrupt that sees the step registered always reaches the except below
        with _RUNNING_LOCK:
            _RUNNING.add(proc)
        # wait4, not wait: this child's own CPU time (RUSAGE_CHILDREN would mix in steps running alongside).
        _, wait_status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(wait_status)
        _STEP_CPU.seconds = usage.ru_utime + usage.ru_stime
        return proc.returncode
    except ChildProcessError:  # reaped by stop_running (interrupted)
        return proc.wait()
    except BaseException:  # interrupted in this thread (--jobs 1): stop the step too (a train step saves, then exits)
        proc.terminate()
        proc.wait()
        raise
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)


def stop_running() -> None:
    """Terminate every step process still running and wait for each (a train step saves, then exits)."""
    with _RUNNING_LOCK:
        procs = list(_RUNNING)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait()


def run_one(
    out: Path, step: PlannedStep, key: str, env: Mapping[str, str], launch: Launcher = launch_subprocess
) -> tuple[int, float]:
    """Run the step's command (its output to its log); on exit 0 write its DONE marker. (exit code, seconds)."""
    _prepare(out, step, key, status(out, step, key))
    log = log_path(out, step.id)
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    _STEP_CPU.seconds = None
    with open(log, "w") as handle:
        handle.write(f"$ vla-jax {' '.join(step.argv)}\n")
        handle.flush()
        code = launch(step.argv, handle, env)
    seconds = round(time.perf_counter() - start, 1)
    # CPU seconds of the step's process: on a shared machine a better size estimate than wall time
    # (None when the launcher ran it in this process, as the tests' toy study does).
    cpu = None if _STEP_CPU.seconds is None else round(_STEP_CPU.seconds, 1)
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
    jobs: int = 1,
) -> int:
    """Every step in dependency order, skipping finished ones, at most ``jobs`` at a time; stop starting new
    steps at the first failure (one line; running ones finish). Exit code.

    ``jobs`` > 1 runs independent steps (other cells, other seeds) side by side: one small-model step keeps
    a 2-core CPU only partly busy (short XLA ops, MuJoCo and Python between them), so two overlap well.
    """
    if jobs < 1:
        raise VLAJaxError(f"--jobs {jobs}: must be at least 1")
    start = time.perf_counter()
    env = with_compile_cache(out, env)
    index = {step.id: i for i, step in enumerate(steps, 1)}

    def tag(step: PlannedStep) -> str:
        return f"[study] {index[step.id]}/{len(steps)} {step.id}"

    done = {s.id for s in steps if status(out, s, keys[s.id]) == "done"}
    for step in steps:
        if step.id in done:
            say(f"{tag(step)}: done, skipped")
    waiting = [s for s in steps if s.id not in done]
    known = {s.id for s in steps}
    failed: list[str] = []
    ran: list[str] = []
    running: dict[concurrent.futures.Future, PlannedStep] = {}
    # One job runs in this thread: a launcher that runs the command in-process (the tests' toy study) may then
    # install signal handlers, as `vla-jax train` does, which Python allows only in the main thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) if jobs > 1 else _InlineExecutor() as pool:
        try:
            while waiting or running:
                # A dependency outside `steps` (a --step run) was checked by require_deps_done.
                ready = [s for s in waiting if all(d in done or d not in known for d in s.deps)]
                for step in ready[: jobs - len(running)] if not failed else []:
                    waiting.remove(step)
                    ran.append(step.id)
                    changed = status(out, step, keys[step.id]) == "changed"
                    say(f"{tag(step)}: running{' (changed: rerun from scratch)' if changed else ''}")
                    running[pool.submit(run_one, out, step, keys[step.id], env, launch)] = step
                if not running:
                    break  # a failure stopped new starts, and nothing is left running
                finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    step = running.pop(future)
                    code, seconds = future.result()
                    if code != 0:
                        failed.append(step.id)
                        say(f"study: step {step.id} failed (exit {code}); log: {log_path(out, step.id)}")
                        continue
                    done.add(step.id)
                    say(f"{tag(step)}: ok in {seconds:.1f} s (study {time.perf_counter() - start:.0f} s)")
        except BaseException:  # Ctrl-C / SIGTERM in this thread: stop every running step (each saves, then exits)
            stop_running()
            raise
        finally:
            if ran:
                record_run(out, time.perf_counter() - start, jobs, len(ran), bool(failed))
    return 1 if failed else 0


def record_run(out: Path, elapsed: float, jobs: int, steps_run: int, failed: bool) -> None:
    """Append this invocation to OUT/.study/runs.jsonl (the report's elapsed time)."""
    record = {
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_seconds": round(elapsed, 1),
        "jobs": jobs,
        "steps_run": steps_run,
        "failed": failed,
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    path = out / MARKERS / RUNS
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


class _InlineExecutor:
    """`submit` runs the call at once in this thread and returns its finished Future (``--jobs 1``)."""

    def submit(self, fn, *args) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args))
        except BaseException as err:  # Ctrl-C included: re-raised by result() in the loop
            future.set_exception(err)
        return future

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *exc) -> None:
        return None


def with_compile_cache(out: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The study's environment plus a JAX persistent compilation cache shared by its steps (unless the user
    or the study set one): every cell of a grid compiles the same few train steps, and a cache hit saves the
    ~20 s an XLA:CPU compile of the demo-size step takes."""
    if "JAX_COMPILATION_CACHE_DIR" in os.environ or "JAX_COMPILATION_CACHE_DIR" in env:
        return dict(env)
    return {**env, "JAX_COMPILATION_CACHE_DIR": str(out / MARKERS / "jax_cache")}


def require_deps_done(out: Path, step: PlannedStep, keys: Mapping[str, str]) -> None:
    """For a single step (an emitted job): its dependencies must have finished with their current keys."""
    missing = [d for d in step.deps if (read_marker(out, d) or {}).get("key") != keys[d]]
    if missing:
        raise VLAJaxError(f"step {step.id}: dependencies not finished: {', '.join(missing)}; run them first")
