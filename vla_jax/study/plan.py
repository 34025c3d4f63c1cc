"""A Study expanded into concrete steps: templated argv, output folder, dependencies, in run order.

Step ids (also the paths of their markers and logs): ``shared/NAME``, ``seed{S}/NAME``,
``cells/CELL/seed{S}/{train,export,eval}``. Templates: ``{out}`` the study folder, ``{seed}``,
``{dir}`` the step's own output folder, ``{cell}``, ``{step:NAME}`` another step's output folder
(a shared step, or the per-seed step of the same seed; in a cell also its train / export / eval).
Only these exact patterns are replaced, so other braces (a dict override) pass through. Every
``{step:NAME}`` is a dependency; the order is a topological sort that keeps the config's order.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from vla_jax.errors import VLAJaxError
from vla_jax.study.spec import CELL_STEPS, Cell, Study

_TEMPLATE = re.compile(r"\{(out|seed|dir|cell|step:[A-Za-z0-9_.-]+)\}")


@dataclasses.dataclass(frozen=True)
class PlannedStep:
    id: str
    argv: tuple[str, ...]  # the vla-jax command, without "vla-jax"
    dir: Path
    deps: tuple[str, ...]  # ids
    cell: str | None = None
    seed: int | None = None

    @property
    def command(self) -> str:
        return self.argv[0]


@dataclasses.dataclass
class _Scope:
    """What the templates of one step can see."""

    out: Path
    dirs: dict[str, tuple[str, Path]]  # step name -> (id, folder)
    seed: int | None = None
    cell: str | None = None


def _fill(text: str, scope: _Scope, own_dir: Path, deps: list[str], where: str) -> str:
    def one(match: re.Match) -> str:
        key = match.group(1)
        if key == "out":
            return str(scope.out)
        if key == "dir":
            return str(own_dir)
        if key == "seed" and scope.seed is not None:
            return str(scope.seed)
        if key == "cell" and scope.cell is not None:
            return scope.cell
        if key.startswith("step:"):
            name = key[5:]
            if name in scope.dirs:
                dep_id, folder = scope.dirs[name]
                if dep_id not in deps:
                    deps.append(dep_id)
                return str(folder)
            raise VLAJaxError(f"{where}: {{{key}}} names no step it can see; known: {sorted(scope.dirs)}")
        raise VLAJaxError(
            f"{where}: {{{key}}} is not defined here ({{seed}} and {{cell}} only in per-seed steps/cells)"
        )

    return _TEMPLATE.sub(one, text)


def _planned(
    step_id: str,
    argv: Iterable[object],
    own_dir: Path,
    scope: _Scope,
    after: Iterable[str] = (),
    cell: str | None = None,
    seed: int | None = None,
) -> PlannedStep:
    deps: list[str] = []
    for name in after:
        if name not in scope.dirs:
            raise VLAJaxError(f"step {step_id}: after={name!r} names no step it can see; known: {sorted(scope.dirs)}")
        deps.append(scope.dirs[name][0])
    filled = tuple(_fill(str(a), scope, own_dir, deps, f"step {step_id}") for a in argv)
    if not filled:
        raise VLAJaxError(f"step {step_id}: empty argv; give a vla-jax command, e.g. ['sim-collect', ...]")
    return PlannedStep(step_id, filled, own_dir, tuple(dict.fromkeys(deps)), cell, seed)


def override_args(overrides: Mapping[str, object]) -> list[str]:
    """--config.KEY=VALUE tokens (vla-jax train's override syntax; booleans as true/false)."""
    return [f"--config.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in overrides.items()]


def cell_steps(cell: Cell, seed: int, scope: _Scope) -> list[PlannedStep]:
    base = scope.out / "cells" / cell.name / f"seed{seed}"
    ids = {name: f"cells/{cell.name}/seed{seed}/{name}" for name in CELL_STEPS}
    own = _Scope(scope.out, {**scope.dirs, **{n: (ids[n], base / n) for n in CELL_STEPS}}, seed, cell.name)
    train = [
        "train",
        "--config",
        cell.config,
        "--workdir",
        "{dir}",
        "--quiet",
        f"--config.seed={seed}",
        *override_args(cell.overrides),
        *cell.train_args,
    ]
    export = ["export", "--workdir", "{step:train}", "--out", "{dir}", *cell.export_args]
    evaluate = [*cell.eval, "--policy", "{step:export}", "--out", "{dir}"]
    return [
        _planned(ids[name], argv, base / name, own, cell=cell.name, seed=seed)
        for name, argv in zip(CELL_STEPS, (train, export, evaluate), strict=True)
    ]


def _ordered(steps: list[PlannedStep]) -> list[PlannedStep]:
    by_id = {s.id: s for s in steps}
    done: dict[str, None] = {}
    visiting: set[str] = set()

    def visit(step: PlannedStep) -> None:
        if step.id in done:
            return
        if step.id in visiting:
            raise VLAJaxError(f"step {step.id}: its dependencies form a cycle; check after= and {{step:...}}")
        visiting.add(step.id)
        for dep in step.deps:
            visit(by_id[dep])
        visiting.discard(step.id)
        done[step.id] = None

    for step in steps:
        visit(step)
    return [by_id[i] for i in done]


def expand(study: Study, out: Path) -> list[PlannedStep]:
    """Every step of the study, templated, in an order where each step follows its dependencies."""
    out = out.resolve()
    shared_dirs = {s.name: (f"shared/{s.name}", out / "shared" / s.name) for s in study.shared}
    steps: list[PlannedStep] = []
    shared_scope = _Scope(out, shared_dirs)
    for step in study.shared:
        steps.append(_planned(f"shared/{step.name}", step.argv, out / "shared" / step.name, shared_scope, step.after))
    for seed in study.seeds:
        seed_dirs = {s.name: (f"seed{seed}/{s.name}", out / f"seed{seed}" / s.name) for s in study.per_seed}
        scope = _Scope(out, {**shared_dirs, **seed_dirs}, seed)
        for step in study.per_seed:
            steps.append(_planned(seed_dirs[step.name][0], step.argv, seed_dirs[step.name][1], scope, step.after))
        for cell in study.cells:
            steps.extend(cell_steps(cell, seed, scope))
    return _ordered(steps)


def select(steps: list[PlannedStep], cells: Iterable[str]) -> list[PlannedStep]:
    """The steps of the named cells (every seed) plus everything they depend on, in order."""
    cells = list(cells)
    if not cells:
        return steps
    by_id = {s.id: s for s in steps}
    known_cells = {s.cell for s in steps if s.cell}
    for name in cells:
        if name not in known_cells:
            raise VLAJaxError(f"--only {name}: no such cell; cells: {', '.join(sorted(known_cells))}")
    wanted: set[str] = {s.id for s in steps if s.cell in cells}
    stack = list(wanted)
    while stack:
        for dep in by_id[stack.pop()].deps:
            if dep not in wanted:
                wanted.add(dep)
                stack.append(dep)
    return [s for s in steps if s.id in wanted]
