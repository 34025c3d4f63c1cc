"""`vla-jax study --config configs/study_NAME.py --out DIR`: a grid of ordinary runs, compared in tables.

Every step (shared data steps, per-seed steps such as a pre-training run, and per cell x seed:
`vla-jax train` -> `export` -> a closed-loop evaluation) runs as its own `vla-jax` process in dependency
order (one at a time, or `--jobs N` independent ones side by side), its output in DIR/logs/ID.log; the
steps share a JAX compilation cache in DIR/.study/jax_cache. Rerunning the same command continues: a
step that finished with the same command (and the same upstream steps) is skipped; one whose command
changed is rerun from an empty folder, and so is everything downstream of it. The report (DIR/study.md,
study.json, one PNG per table) is written at the end, or alone with `--report DIR`.
Format and semantics: docs/study.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
from pathlib import Path

from vla_jax.errors import VLAJaxError
from vla_jax.study import emit, plan, report, runner
from vla_jax.study.spec import Study, load_study
from vla_jax.train.config import PREFIX, load_config

EPILOG = """\
examples:
  vla-jax study --config configs/study_structure.py --out runs/structure        # everything, then the tables
  vla-jax study --config configs/study_structure.py --out runs/structure --list # every step and its status
  vla-jax study --config configs/study_structure.py --out runs/structure --only policy_head_w2
  vla-jax study --config configs/study_data.py --out runs/data --jobs 2          # two steps at a time
  vla-jax study --report runs/structure                                         # tables from what finished
  vla-jax study --config configs/study_structure.py --out /shared/structure --emit slurm jobs/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--config", metavar="FILE[:ARG]", help="study config defining get_study() (configs/study_*.py)")
    parser.add_argument("--out", help="study folder: every step's output, logs, DONE markers and the report")
    parser.add_argument("--only", action="append", default=[], metavar="CELL", help="this cell (all seeds) + its deps")
    parser.add_argument("--list", action="store_true", help="print every step with its status and command; run nothing")
    parser.add_argument("--dry-run", action="store_true", help="print what a run would do now; run nothing")
    parser.add_argument("--step", metavar="ID", help="run exactly this step (its dependencies must be done)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run up to N independent steps at once (default 1; 2 on a 2-core CPU: docs/study.md)",
    )
    parser.add_argument("--report", metavar="DIR", help="only write DIR's tables (study.md/json/png) and print them")
    parser.add_argument(
        "--emit",
        nargs=2,
        metavar=("slurm|tpu", "JOBDIR"),
        help="write one cluster job per step to JOBDIR (submitted by you, not here)",
    )


def _check_train_configs(steps: list[plan.PlannedStep]) -> None:
    """Every train step's config file and overrides load (unknown keys, bad values) before anything runs."""
    seen: set[tuple[str, ...]] = set()
    for step in steps:
        if step.command != "train" or "--config" not in step.argv:
            continue
        spec = step.argv[step.argv.index("--config") + 1]
        overrides = tuple(a for a in step.argv if a.startswith(PREFIX) and not a.startswith(f"{PREFIX}seed="))
        if (spec, *overrides) in seen:
            continue
        seen.add((spec, *overrides))
        try:
            load_config(spec, overrides)
        except VLAJaxError as err:
            raise VLAJaxError(f"step {step.id}: {err}") from None


def manifest(study: Study, steps: list[plan.PlannedStep], keys: dict[str, str], config: str) -> dict:
    return {
        "name": study.name,
        "config": config,
        "seeds": list(study.seeds),
        "cells": [{"name": c.name, "factors": dict(c.factors)} for c in study.cells],
        "tables": [dataclasses.asdict(t) for t in study.tables],
        "keys": {s.id: keys[s.id] for s in steps},
    }


def _print_plan(out: Path, steps: list[plan.PlannedStep], keys: dict[str, str], verbose: bool) -> None:
    for i, step in enumerate(steps, 1):
        state = runner.status(out, step, keys[step.id])
        action = {"done": "skip (done)", "changed": "rerun (command changed)", "pending": "run"}[state]
        print(f"{i:4d} {step.id}: {state if verbose else action}")
        if verbose or state != "done":
            print(f"       vla-jax {' '.join(step.argv)}")


def _report(out: Path) -> int:
    result = report.write_report(out)
    print((out / "study.md").read_text())
    print(f"[study] report: {out / 'study.md'}, {out / 'study.json'}, {len(result['tables'])} plot(s)")
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (a cluster's time limit, `kill`) ends the running step as Ctrl-C does


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    return execute(args, runner.launch_subprocess)


def execute(args: argparse.Namespace, launch: runner.Launcher) -> int:
    """`run` with the way a step's command is started as a parameter (the tests run the toy study in-process)."""
    if args.report:
        return _report(Path(args.report).resolve())
    if not args.config or not args.out:
        raise VLAJaxError("pass --config configs/study_NAME.py and --out DIR (or --report DIR alone)")
    if args.jobs < 1:
        raise VLAJaxError(f"--jobs {args.jobs}: must be at least 1")
    out = Path(args.out).resolve()
    study = load_study(args.config)
    every = plan.expand(study, out)
    keys = runner.step_keys(every)
    steps = plan.select(every, args.only)
    _check_train_configs(steps)
    if args.list or args.dry_run:
        _print_plan(out, steps, keys, verbose=args.list)
        return 0
    if args.emit:
        kind, jobdir = args.emit
        if kind not in emit.EMITTERS:
            raise VLAJaxError(f"--emit {kind}: choose one of {', '.join(emit.EMITTERS)}")
        written = emit.EMITTERS[kind](steps, args.config, args.out, study.name, Path(jobdir))
        print(f"[study] wrote {len(written)} file(s) for {len(steps)} steps to {jobdir}; nothing submitted")
        return 0
    report.write_manifest(out, manifest(study, every, keys, args.config))
    if args.step:
        step = next((s for s in every if s.id == args.step), None)
        if step is None:
            raise VLAJaxError(f"--step {args.step}: no such step; see --list for the ids")
        runner.require_deps_done(out, step, keys)
        return runner.run_steps(out, [step], keys, study.env, launch=launch)
    code = runner.run_steps(out, steps, keys, study.env, launch=launch, jobs=args.jobs)
    if code == 0:
        _report(out)
    return code
