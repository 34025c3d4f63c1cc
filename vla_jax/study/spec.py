"""The study-config format: a Python file defining ``get_study(arg=None) -> Study``.

A study is shared steps (run once), per-seed steps (run once per seed, e.g. a pre-training run that
cells initialise from) and cells (each one `vla-jax train` + `export` + a closed-loop evaluation per
seed), plus the tables the report draws from the cells' factors. Strings are templates: ``{out}``,
``{seed}``, ``{dir}``, ``{cell}``, ``{step:NAME}`` (see `vla_jax.study.plan`). The contract is in
docs/study.md.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from vla_jax.errors import VLAJaxError
from vla_jax.train.config import call_config_file

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
CELL_STEPS = ("train", "export", "eval")


@dataclasses.dataclass(frozen=True)
class Step:
    """One `vla-jax` command: ``argv`` without the leading ``vla-jax``; ``after`` = extra dependencies by name."""

    name: str
    argv: Sequence[str]
    after: Sequence[str] = ()


@dataclasses.dataclass(frozen=True)
class Cell:
    """One point of the grid, run once per seed: train (config + overrides) -> export -> ``eval``."""

    name: str
    factors: Mapping[str, str | int | float]
    config: str
    overrides: Mapping[str, object] = dataclasses.field(default_factory=dict)
    eval: Sequence[str] = ("sim-eval", "--env", "mobile")
    train_args: Sequence[str] = ()
    export_args: Sequence[str] = ()


@dataclasses.dataclass(frozen=True)
class Table:
    """Rows x cols of two factors, each entry the mean ± std over seeds of ``metric`` (a summary.json path)."""

    title: str
    rows: str
    cols: str
    metric: str = "overall.success"
    where: Mapping[str, object] = dataclasses.field(default_factory=dict)
    percent: bool = True


@dataclasses.dataclass(frozen=True)
class Study:
    name: str
    seeds: Sequence[int] = (0, 1, 2)
    shared: Sequence[Step] = ()
    per_seed: Sequence[Step] = ()
    cells: Sequence[Cell] = ()
    tables: Sequence[Table] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


def check_study(study: Study, where: str) -> Study:
    """Names that are paths and unique, seeds present, table factors that exist: one line naming the fix."""
    if not isinstance(study, Study):
        raise VLAJaxError(f"{where}: get_study() returned {type(study).__name__}, not vla_jax.study.spec.Study")
    if not study.seeds or len(set(study.seeds)) != len(study.seeds):
        raise VLAJaxError(f"{where}: seeds {list(study.seeds)} must be non-empty and distinct")
    step_names = [s.name for s in (*study.shared, *study.per_seed)]
    for kind, names in (("step", step_names), ("cell", [c.name for c in study.cells])):
        for name in names:
            if not NAME_RE.match(name):
                raise VLAJaxError(f"{where}: {kind} name {name!r} must match [A-Za-z0-9_.-]+ (it is a folder name)")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise VLAJaxError(f"{where}: {kind} name(s) {dupes} used more than once; names must be unique")
    clash = sorted(set(step_names) & set(CELL_STEPS))
    if clash:
        raise VLAJaxError(f"{where}: step name(s) {clash} are reserved for a cell's own steps; rename them")
    for cell in study.cells:
        if "seed" in cell.overrides:
            raise VLAJaxError(f"{where}: cell {cell.name} sets overrides['seed']; the runner sets it from Study.seeds")
        if not cell.eval:
            raise VLAJaxError(f"{where}: cell {cell.name} has an empty eval command; give e.g. ['sim-eval', ...]")
    factors = {k for c in study.cells for k in c.factors}
    for table in study.tables:
        missing = [f for f in (table.rows, table.cols, *table.where) if f not in factors]
        if missing:
            raise VLAJaxError(
                f"{where}: table {table.title!r} uses factor(s) {missing} that no cell has; cells' factors: "
                f"{sorted(factors)}"
            )
    return study


def load_study(spec: str) -> Study:
    """``configs/study_X.py[:ARG]`` -> the checked Study its ``get_study(ARG)`` returns."""
    study = call_config_file(spec, entry="get_study", what="study config", returns="Study")
    return check_study(study, spec.partition(":")[0])
