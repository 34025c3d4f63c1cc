"""`vla-jax study`: plan + templates, resume (skip / rerun on a changed command), report, emitted jobs, a toy study.

The unit tests drive the runner with a fake launcher (no real commands); the toy study runs the real
commands (collect, convert, tokenizer, train, export, sim-eval) in this process for speed; one test
runs a step as a real subprocess to check the failure line.
"""

import argparse
import contextlib
import json
import math
import os
from pathlib import Path
from unittest import mock

import pytest

from vla_jax.cli import main, parse_command_args
from vla_jax.commands import study as study_cmd
from vla_jax.errors import VLAJaxError
from vla_jax.study import emit, plan, report, runner
from vla_jax.study.spec import Cell, Step, Study, Table, check_study, load_study

TESTS = Path(__file__).resolve().parent


def small_study(collect_seed: int = 0) -> Study:
    return Study(
        "unit",
        seeds=(0, 1),
        shared=[
            Step("data", ["fake", "--seed", str(collect_seed), "--out", "{dir}"]),
            Step("other", ["fake", "--out", "{dir}"]),
        ],
        per_seed=[Step("pre", ["fake", "--data", "{step:data}", "--seed", "{seed}", "--out", "{dir}"])],
        cells=[
            Cell(
                "a",
                {"s": "scratch", "n": 5},
                "cfg.py:{out}",
                overrides={"data.config.data_dir": "{step:data}", "flag": True},
            ),
            Cell("b", {"s": "pre", "n": 5}, "cfg.py", overrides={"init_from": "{step:pre}"}),
        ],
        tables=[Table("t", rows="s", cols="n")],
    )


class FakeLaunch:
    """Records argv; creates the step's --out / --workdir folder with a file; fails on chosen ids' commands."""

    def __init__(self, fail=()):
        self.calls, self.fail = [], set(fail)

    def __call__(self, argv, log, env):
        self.calls.append(list(argv))
        log.write("fake output\n")
        for flag in ("--out", "--workdir"):
            if flag in argv:
                folder = Path(argv[argv.index(flag) + 1])
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "artefact").write_text("x")
        return 3 if any(f in argv for f in self.fail) else 0


def run_all(out, study, launch, lines=None):
    steps = plan.expand(study, out)
    keys = runner.step_keys(steps)
    say = lines.append if lines is not None else (lambda line: None)
    return runner.run_steps(out, steps, keys, study.env, say=say, launch=launch), steps


def test_plan_templates_dependencies_and_order(tmp_path):
    steps = {s.id: s for s in plan.expand(small_study(), tmp_path)}
    assert len(steps) == 2 + 2 * (1 + 2 * 3)
    train = steps["cells/a/seed1/train"]
    assert train.argv[:7] == (
        "train",
        "--config",
        f"cfg.py:{tmp_path}",
        "--workdir",
        str(train.dir),
        "--quiet",
        "--config.seed=1",
    )
    assert f"--config.data.config.data_dir={tmp_path}/shared/data" in train.argv and "--config.flag=true" in train.argv
    assert train.deps == ("shared/data",)
    assert steps["cells/b/seed1/train"].deps == ("seed1/pre",)
    assert f"--config.init_from={tmp_path}/seed1/pre" in steps["cells/b/seed1/train"].argv
    assert steps["seed1/pre"].argv[4] == "1" and steps["seed1/pre"].deps == ("shared/data",)
    ev = steps["cells/a/seed0/eval"]
    assert ev.argv[-4:] == ("--policy", str(tmp_path / "cells/a/seed0/export"), "--out", str(ev.dir))
    order = [s.id for s in plan.expand(small_study(), tmp_path)]
    assert all(order.index(d) < order.index(s.id) for s in steps.values() for d in s.deps)
    assert {s.id for s in plan.select(list(steps.values()), ["b"])} == {
        *(f"cells/b/seed{i}/{n}" for i in (0, 1) for n in ("train", "export", "eval")),
        "seed0/pre",
        "seed1/pre",
        "shared/data",
    }


@pytest.mark.parametrize(
    "study, message",
    [
        (Study("x", shared=[Step("a", ["fake", "{step:nope}"])]), "{step:nope} names no step"),
        (Study("x", shared=[Step("a", ["fake", "{seed}"])]), "{seed} is not defined here"),
        (Study("x", shared=[Step("a", ["fake"], after=["zz"])]), "after='zz' names no step"),
    ],
)
def test_plan_errors_are_one_line(tmp_path, study, message):
    with pytest.raises(VLAJaxError, match=message.replace("{", r"\{").replace("}", r"\}")):
        plan.expand(study, tmp_path)


def test_study_config_file_errors_name_the_fix(tmp_path):
    with pytest.raises(VLAJaxError, match=r"study config .*nope.py not found; pass --config configs/study_NAME.py"):
        load_study(str(tmp_path / "nope.py"))
    (tmp_path / "s.py").write_text("def get_config():\n    pass\n")
    with pytest.raises(VLAJaxError, match=r"defines no get_study\(\); add `def get_study\(arg=None\) -> Study`"):
        load_study(str(tmp_path / "s.py"))
    (tmp_path / "t.py").write_text("def get_study(arg=None):\n    return arg\n")
    with pytest.raises(VLAJaxError, match="get_study\\(\\) returned str, not vla_jax.study.spec.Study"):
        load_study(f"{tmp_path / 't.py'}:x")


def test_spec_checks_name_the_fix():
    with pytest.raises(VLAJaxError, match="runner sets it"):
        check_study(Study("x", cells=[Cell("c", {"a": 1}, "cfg.py", overrides={"seed": 3})]), "f.py")
    with pytest.raises(VLAJaxError, match=r"factor\(s\) \['zz'\]"):
        check_study(Study("x", cells=[Cell("c", {"a": 1}, "cfg.py")], tables=[Table("t", "a", "zz")]), "f.py")
    with pytest.raises(VLAJaxError, match="used more than once"):
        check_study(Study("x", shared=[Step("a", ["f"]), Step("a", ["g"])]), "f.py")


def test_finished_steps_are_skipped_and_a_changed_command_reruns_downstream(tmp_path):
    launch = FakeLaunch()
    code, steps = run_all(tmp_path, small_study(), launch)
    assert code == 0 and len(launch.calls) == len(steps)
    marker = json.loads((tmp_path / ".study/shared/data.json").read_text())
    assert marker["argv"] == ["fake", "--seed", "0", "--out", str(tmp_path / "shared/data")]
    assert (tmp_path / "logs/shared/data.log").read_text().startswith("$ vla-jax fake --seed 0")

    launch = FakeLaunch()
    lines = []
    assert run_all(tmp_path, small_study(), launch, lines)[0] == 0
    assert launch.calls == [] and all(line.endswith("done, skipped") for line in lines)

    (tmp_path / "shared/data/stale").write_text("from the old command")
    launch = FakeLaunch()
    assert run_all(tmp_path, small_study(collect_seed=7), launch)[0] == 0
    assert launch.calls[0][:3] == ["fake", "--seed", "7"]
    assert not (tmp_path / "shared/data/stale").exists()  # a changed step starts from a removed folder
    assert ["fake", "--out", str(tmp_path / "shared/other")] not in launch.calls  # independent of data: skipped
    # everything downstream of data reran: both per-seed steps and every cell step (both cells depend on it)
    assert len(launch.calls) == 1 + 2 + 2 * 2 * 3


def test_failed_step_is_one_line_and_the_rerun_continues_there(tmp_path):
    study = small_study()
    lines = []
    code, steps = run_all(tmp_path, study, FakeLaunch(fail=["--workdir"]), lines)
    first_train = next(s for s in steps if s.command == "train")
    assert code == 1
    assert lines[-1] == f"study: step {first_train.id} failed (exit 3); log: {tmp_path / 'logs' / first_train.id}.log"
    assert not (tmp_path / ".study" / f"{first_train.id}.json").exists()
    (first_train.dir / "checkpoint").write_text("kept: a train step with the same command resumes its workdir")
    unfinished = [s.id for s in steps if not (tmp_path / ".study" / f"{s.id}.json").exists()]
    launch = FakeLaunch()
    assert run_all(tmp_path, study, launch)[0] == 0
    assert launch.calls[0][0] == "train" and (first_train.dir / "checkpoint").exists()
    assert len(launch.calls) == len(unfinished) and unfinished[0] == first_train.id
    keys = runner.step_keys(steps)
    assert all(runner.status(tmp_path, s, keys[s.id]) == "done" for s in steps)


def write_fake_results(out, values, cells=("a", "b"), seeds=(0, 1, 2), stale=()):
    """Manifest + DONE markers + summary.json for the (cell, seed) pairs in ``values``."""
    manifest = {
        "name": "r",
        "config": "x.py",
        "seeds": list(seeds),
        "cells": [{"name": "a", "factors": {"s": "scratch", "n": 5}}, {"name": "b", "factors": {"s": "pre", "n": 5}}],
        "tables": [
            {"title": "Success", "rows": "s", "cols": "n", "metric": "overall.success", "where": {}, "percent": True}
        ],
        "keys": {f"cells/{c}/seed{s}/{n}": f"k{c}{s}{n}" for c in cells for s in seeds for n in ("train", "eval")},
    }
    report.write_manifest(out, manifest)
    for (cell, seed), value in values.items():
        base = out / "cells" / cell / f"seed{seed}"
        (base / "eval").mkdir(parents=True)
        (base / "eval/summary.json").write_text(json.dumps({"overall": {"success": value}}))
        for name, wall in (("train", 10.0 + seed), ("eval", 2.0)):
            key = "stale" if (cell, seed) in stale else f"k{cell}{seed}{name}"
            path = out / ".study" / f"cells/{cell}/seed{seed}/{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"key": key, "wall_seconds": wall}))


def test_report_mean_std_and_missing_never_zero(tmp_path):
    write_fake_results(
        tmp_path, {("a", 0): 0.5, ("a", 1): 0.7, ("a", 2): 0.9, ("b", 0): 0.2, ("b", 1): 0.4}, stale=[("b", 1)]
    )
    result = report.write_report(tmp_path)
    (table,) = result["tables"]
    assert table["row_values"] == ["scratch", "pre"] and table["col_values"] == [5]
    a, b = table["entries"][0][0], table["entries"][1][0]
    assert a["n"] == 3 and math.isclose(a["mean"], 0.7) and math.isclose(a["std"], 0.2)
    assert b["n"] == 1 and b["values"] == [0.2] and b["std"] is None  # the stale seed is not counted
    md = (tmp_path / "study.md").read_text()
    assert "| scratch | 70.0 ± 20.0 (n=3) |" in md and "| pre | 20.0 (n=1 of 3) |" in md
    assert (tmp_path / "study_success.png").stat().st_size > 0
    assert json.loads((tmp_path / "study.json").read_text())["cells"]["a"]["seeds"]["1"]["train_wall_seconds"] == 11.0

    empty = tmp_path / "empty"
    write_fake_results(empty, {("a", 0): 0.5})
    table = report.write_report(empty)["tables"][0]
    assert table["entries"][1][0] is None
    assert "| pre | missing |" in (empty / "study.md").read_text()
    assert json.loads((empty / "study.json").read_text())["tables"][0]["entries"][1][0] is None


def test_report_marks_cells_outside_the_grid_and_the_elapsed_time(tmp_path):
    write_fake_results(tmp_path, {("a", 0): 0.5, ("b", 0): 0.25}, seeds=(0,))
    manifest = report.read_manifest(tmp_path)
    manifest["cells"][1]["factors"]["n"] = 10  # b now sits at (pre, 10): (scratch, 10) and (pre, 5) do not exist
    report.write_manifest(tmp_path, manifest)
    runner.record_run(tmp_path, 12.5, 2, 3, False)
    runner.record_run(tmp_path, 7.5, 2, 1, False)
    result = report.write_report(tmp_path)
    assert result["tables"][0]["in_grid"] == [[True, False], [False, True]]
    md = (tmp_path / "study.md").read_text()
    assert "| scratch | 50.0 (n=1) | - |" in md and "| pre | - | 25.0 (n=1) |" in md
    assert "Elapsed (`vla-jax study` invocations that ran steps, --jobs 2): 20 s in 2 run(s)" in md
    assert [r["elapsed_seconds"] for r in result["runs"]] == [12.5, 7.5]


def test_emitted_slurm_chain_and_tpu_script(tmp_path):
    steps = plan.expand(small_study(), tmp_path / "out")
    files = emit.slurm(steps, "configs/study_x.py", "/shared/out", "unit", tmp_path / "jobs")
    submit = (tmp_path / "jobs/submit.sh").read_text().splitlines()
    index = {s.id: i for i, s in enumerate(steps)}
    line = next(x for x in submit if x.endswith("# cells/b/seed1/train"))
    assert f"j{index['cells/b/seed1/train']}=$(sbatch --parsable --dependency=afterok:$j{index['seed1/pre']} " in line
    assert next(x for x in submit if x.endswith("# shared/data")).startswith(
        f"j{index['shared/data']}=$(sbatch --parsable "
    )
    assert "--dependency" not in next(x for x in submit if x.endswith("# shared/data"))
    assert submit[-1].startswith("sbatch --dependency=afterany:$j0:$j1:")
    sbatch = (tmp_path / "jobs" / f"{index['cells/b/seed1/train']:03d}_cells__b__seed1__train.sbatch").read_text()
    assert sbatch.startswith("#!/bin/bash\n#SBATCH --job-name=study-unit-cells__b__seed1__train\n")
    assert "#SBATCH --gpus-per-node=1" in sbatch
    assert sbatch.rstrip().endswith(
        "srun .venv/bin/vla-jax study --config configs/study_x.py --out /shared/out --step cells/b/seed1/train"
    )
    assert len(files) == len(steps) + 2
    assert ".venv/bin/vla-jax study --report /shared/out" in (tmp_path / "jobs/report.sbatch").read_text()

    (script,) = emit.tpu(steps, "configs/study_x.py", "/mnt/out", "unit", tmp_path / "tpu")
    text = script.read_text().splitlines()
    assert 'python launch/tpu.py create --name "$NAME" --zone "$ZONE" --accelerator-type "$ACCEL"' in text
    ssh = [x for x in text if x.startswith("gcloud compute tpus tpu-vm ssh")]
    assert len(ssh) == len(steps) + 1
    assert ssh[0] == (
        'gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker=0 --command=\'cd ~/vla-jax && '
        f".venv/bin/vla-jax study --config configs/study_x.py --out /mnt/out --step {steps[0].id}'"
    )
    assert text[-1] == 'python launch/tpu.py delete --name "$NAME" --zone "$ZONE"'


def test_a_failing_subprocess_step_names_step_log_and_exit_code(tmp_path, capsys):
    config = tmp_path / "study_fail.py"
    config.write_text(
        "from vla_jax.study.spec import Step, Study\n"
        "def get_study(arg=None):\n"
        "    return Study('f', seeds=(0,), shared=[Step('ok', ['tokenizer', '--help']), Step('bad', ['tokenizer'])])\n"
    )
    assert main(["study", "--config", str(config), "--out", str(tmp_path / "out")]) == 1
    printed = capsys.readouterr().out.splitlines()
    log = tmp_path / "out/logs/shared/bad.log"
    assert printed[-1] == f"study: step shared/bad failed (exit 2); log: {log}"
    assert "the following arguments are required" in log.read_text()
    ok = json.loads((tmp_path / "out/.study/shared/ok.json").read_text())
    assert ok["cpu_seconds"] > 0  # the child's own CPU time (os.wait4), not the test process's


class ConcurrentLaunch(FakeLaunch):
    """FakeLaunch that takes a little time and records how many steps ran at once and in what order."""

    def __init__(self, fail=()):
        super().__init__(fail)
        import threading

        self.lock, self.active, self.most, self.events = threading.Lock(), 0, 0, []

    def __call__(self, argv, log, env):
        import time

        out = argv[argv.index("--out") + 1] if "--out" in argv else argv[argv.index("--workdir") + 1]
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            self.events.append(("start", out))
        time.sleep(0.02)
        code = super().__call__(argv, log, env)
        with self.lock:
            self.active -= 1
            self.events.append(("end", out))
        return code


def test_jobs_run_independent_steps_side_by_side_never_before_their_dependencies(tmp_path):
    study = small_study()
    steps = plan.expand(study, tmp_path)
    keys = runner.step_keys(steps)
    launch = ConcurrentLaunch()
    assert runner.run_steps(tmp_path, steps, keys, study.env, say=lambda line: None, launch=launch, jobs=3) == 0
    assert launch.most == 3 and len(launch.calls) == len(steps)
    position = {event: i for i, event in enumerate(launch.events)}
    for step in steps:
        for dep in step.deps:
            dep_dir = str(next(s.dir for s in steps if s.id == dep))
            assert position[("end", dep_dir)] < position[("start", str(step.dir))], (dep, step.id)
    assert all(runner.status(tmp_path, s, keys[s.id]) == "done" for s in steps)


def test_jobs_a_failure_stops_new_starts_and_the_rerun_continues(tmp_path):
    study = small_study()
    steps = plan.expand(study, tmp_path)
    keys = runner.step_keys(steps)
    lines = []
    launch = ConcurrentLaunch(fail=["--workdir"])
    assert runner.run_steps(tmp_path, steps, keys, study.env, say=lines.append, launch=launch, jobs=2) == 1
    assert any(line.startswith("study: step cells/") and "failed (exit 3)" in line for line in lines)
    assert len(launch.calls) < len(steps)  # nothing downstream of the failed train step started
    assert runner.run_steps(tmp_path, steps, keys, study.env, say=lambda line: None, launch=FakeLaunch(), jobs=2) == 0
    assert all(runner.status(tmp_path, s, keys[s.id]) == "done" for s in steps)


def test_stop_running_ends_real_side_by_side_steps(tmp_path, monkeypatch):
    """Two real child processes under --jobs 2; stop_running (what Ctrl-C / SIGTERM call) ends both at once."""
    import threading
    import time

    sleeper = tmp_path / "sleeper"
    sleeper.write_text("#!/bin/sh\nsleep 60\n")
    sleeper.chmod(0o755)
    monkeypatch.setattr(runner.sys, "executable", str(sleeper))  # launch_subprocess runs EXECUTABLE -m vla_jax.cli ...
    study = Study(
        "s", seeds=(0,), shared=[Step("a", ["fake", "--out", "{dir}"]), Step("b", ["fake", "--out", "{dir}"])]
    )
    steps = plan.expand(study, tmp_path / "out")
    keys = runner.step_keys(steps)
    lines, result = [], {}
    worker = threading.Thread(
        target=lambda: result.setdefault(
            "code", runner.run_steps(tmp_path / "out", steps, keys, {}, lines.append, jobs=2)
        )
    )
    start = time.perf_counter()
    worker.start()
    while len(runner._RUNNING) < 2 and time.perf_counter() - start < 20:
        time.sleep(0.05)
    assert len(runner._RUNNING) == 2  # both steps run at once
    runner.stop_running()
    worker.join(timeout=20)
    assert result["code"] == 1 and time.perf_counter() - start < 30
    assert sum("failed (exit -15)" in line for line in lines) == 2 and not runner._RUNNING


def test_an_interrupt_with_one_job_stops_its_step_process(tmp_path, monkeypatch):
    """--jobs 1 runs the step in this thread: Ctrl-C / SIGTERM here must still terminate the child."""
    import signal
    import threading
    import time

    sleeper = tmp_path / "sleeper"
    sleeper.write_text("#!/bin/sh\nsleep 60\n")
    sleeper.chmod(0o755)
    monkeypatch.setattr(runner.sys, "executable", str(sleeper))
    study = Study("s", seeds=(0,), shared=[Step("a", ["fake", "--out", "{dir}"])])
    steps = plan.expand(study, tmp_path / "out")
    seen = []

    def interrupt():
        start = time.perf_counter()
        while not runner._RUNNING and time.perf_counter() - start < 20:
            time.sleep(0.05)
        seen.extend(runner._RUNNING)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    # Ctrl-C as a fresh `vla-jax study` process has it: under xdist an earlier test file on the same worker can
    # leave SIGINT with another disposition (the test then waited out the 60 s sleeper: make test, 2026-12-02).
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT handlers can only be set from the main thread")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt).start()
        with pytest.raises(KeyboardInterrupt):
            runner.run_steps(tmp_path / "out", steps, runner.step_keys(steps), {}, lambda line: None, jobs=1)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
    assert len(seen) == 1 and seen[0].poll() is not None  # terminated and reaped, not left running


def test_steps_share_a_compile_cache_unless_one_is_set(tmp_path, monkeypatch):
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    assert runner.with_compile_cache(tmp_path, {"A": "1"}) == {
        "A": "1",
        "JAX_COMPILATION_CACHE_DIR": str(tmp_path / ".study/jax_cache"),
    }
    assert runner.with_compile_cache(tmp_path, {"JAX_COMPILATION_CACHE_DIR": "/c"}) == {
        "JAX_COMPILATION_CACHE_DIR": "/c"
    }
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/mine")
    assert runner.with_compile_cache(tmp_path, {}) == {}
    with pytest.raises(VLAJaxError, match="--jobs 0: must be at least 1"):
        runner.run_steps(tmp_path, [], {}, {}, jobs=0)


def in_process(argv, log, env):
    """The step's command through the same `vla-jax` entry point, in this process (the subprocess path is above)."""
    with mock.patch.dict(os.environ, dict(env)), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        return main(list(argv))


def study_args(*argv) -> argparse.Namespace:
    return parse_command_args("study", study_cmd, list(argv))


@pytest.fixture
def shared_xla_cache():
    """JAX's persistent compilation cache in the tests' shared folder (as tests/tiny_arm_config.py uses): the
    toy study's two cells compile the same programs once."""
    import tempfile

    import jax

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    before = {name: getattr(jax.config, name) for name in names}
    jax.config.update(names[0], str(Path(tempfile.gettempdir()) / f"vla_jax_tests_xla_cache_{os.getuid()}"))
    jax.config.update(names[1], 0.0)
    yield
    for name, value in before.items():
        jax.config.update(name, value)


def test_toy_study_two_cells_one_seed(tmp_path, capsys, shared_xla_cache):
    out = tmp_path / "toy"
    config = str(TESTS / "study_toy.py")
    assert study_cmd.execute(study_args("--config", config, "--out", str(out)), in_process) == 0
    result = json.loads((out / "study.json").read_text())
    (table,) = result["tables"]
    assert table["col_values"] == ["off", "on"]
    for entry in table["entries"][0]:
        assert entry["n"] == 1 and 0.0 <= entry["mean"] <= 1.0
    summary = json.loads((out / "cells/mirror_on/seed0/eval/summary.json").read_text())
    assert summary["overall"]["episodes"] == 2
    trained = json.loads((out / "cells/mirror_on/seed0/train/config.json").read_text())
    assert trained["data"]["config"]["mirror_augment"] is True
    assert result["cells"]["mirror_off"]["seeds"]["0"]["final_loss"] > 0
    assert "| policy_head |" in (out / "study.md").read_text()
    calls = []
    assert study_cmd.execute(study_args("--config", config, "--out", str(out)), lambda *a: calls.append(a) or 0) == 0
    assert calls == []  # everything finished: nothing reruns
    capsys.readouterr()
    assert study_cmd.execute(study_args("--config", config, "--out", str(out), "--dry-run"), in_process) == 0
    assert all(line.endswith("skip (done)") for line in capsys.readouterr().out.splitlines())


def test_a_bad_override_or_cell_is_one_line_before_anything_runs(tmp_path):
    config = tmp_path / "study_bad.py"
    config.write_text(
        "from vla_jax.study.spec import Cell, Study, Table\n"
        f"TOY = {str(TESTS / 'study_toy.py')!r}\n"
        "def get_study(arg=None):\n"
        "    return Study('bad', seeds=(0,), cells=[Cell('c', {'a': 1}, TOY, overrides={'model.windw_size': 2})])\n"
    )
    calls = []
    args = study_args("--config", str(config), "--out", str(tmp_path / "out"))
    with pytest.raises(VLAJaxError, match=r"step cells/c/seed0/train: unknown config key 'model.windw_size'; did you"):
        study_cmd.execute(args, lambda *a: calls.append(a) or 0)
    with pytest.raises(VLAJaxError, match="--only nope: no such cell; cells: c"):
        study_cmd.execute(study_args("--config", str(config), "--out", str(tmp_path / "o"), "--only", "nope"), None)
    assert calls == [] and not (tmp_path / "out").exists()


def test_a_key_does_not_change_when_the_checkout_moves(monkeypatch, tmp_path):
    def key_in(checkout: str, config: str) -> str:
        monkeypatch.setattr(runner, "CHECKOUT", checkout)
        step = plan.PlannedStep("shared/t", ("train", "--config", checkout + config), tmp_path / "t", ())
        return runner.step_keys([step])["shared/t"]

    assert key_in("/home/a/vla-jax/", "configs/demo.py") == key_in("/scratch/b/clone/", "configs/demo.py")
    assert key_in("/home/a/vla-jax/", "configs/demo.py") != key_in("/home/a/vla-jax/", "configs/tiny.py")
