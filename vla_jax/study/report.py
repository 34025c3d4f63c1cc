"""The study's results: per table, mean ± std over seeds of a summary.json metric, as markdown, JSON and a plot.

Reads only finished evaluations (an eval step whose DONE marker holds the key the study manifest
recorded), so a stale or half-written result never enters a table. A cell x seed without one is
missing: shown as "missing" (JSON null), never as 0. std is the sample standard deviation (ddof=1)
over the seeds that have a result, n is their count; with n = 1 there is no spread to show.
Train wall and CPU seconds come from the train step's DONE marker (compile and data loading included),
the final loss from the workdir's metrics.jsonl.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vla_jax.errors import VLAJaxError
from vla_jax.study import plot
from vla_jax.study.runner import MARKERS, RUNS, read_marker

MANIFEST = "manifest.json"


def write_manifest(out: Path, manifest: Mapping[str, Any]) -> None:
    path = out / MARKERS / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # parallel cluster jobs write it too: never a torn file
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(path)


def read_manifest(out: Path) -> dict:
    path = out / MARKERS / MANIFEST
    if not path.is_file():
        raise VLAJaxError(f"{out} holds no study ({path} missing); run `vla-jax study --config ... --out {out}` first")
    return json.loads(path.read_text())


def read_runs(out: Path) -> list[dict]:
    """The invocations recorded in OUT/.study/runs.jsonl (runner.record_run): elapsed seconds, --jobs, load."""
    path = out / MARKERS / RUNS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def metric_value(summary: Mapping[str, Any], metric: str) -> float | None:
    node: Any = summary
    for part in metric.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def _final_loss(workdir: Path) -> float | None:
    path = workdir / "metrics.jsonl"
    if not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1]).get("loss") if lines else None


def collect(out: Path, manifest: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """cell -> seed -> {summary, train_wall_seconds, final_loss} for every finished evaluation."""
    keys = manifest["keys"]
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for cell in manifest["cells"]:
        per_seed: dict[str, dict[str, Any]] = {}
        for seed in manifest["seeds"]:
            base = f"cells/{cell['name']}/seed{seed}"
            marker = read_marker(out, f"{base}/eval")
            summary_path = out / base / "eval" / "summary.json"
            if marker is None or marker.get("key") != keys.get(f"{base}/eval") or not summary_path.is_file():
                continue
            train = read_marker(out, f"{base}/train") or {}
            per_seed[str(seed)] = {
                "summary": json.loads(summary_path.read_text()),
                "train_wall_seconds": train.get("wall_seconds"),
                "train_cpu_seconds": train.get("cpu_seconds"),
                "eval_wall_seconds": marker.get("wall_seconds"),
                "final_loss": _final_loss(out / base / "train"),
            }
        results[cell["name"]] = per_seed
    return results


def aggregate(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": statistics.fmean(values), "std": std, "n": len(values), "values": values}


def _ordered_values(cells: list[dict], factor: str) -> list[Any]:
    seen: dict[Any, None] = {}
    for cell in cells:
        seen.setdefault(cell["factors"][factor], None)
    return list(seen)


def build_table(table: Mapping[str, Any], manifest: Mapping[str, Any], results: Mapping[str, Any]) -> dict[str, Any]:
    cells = [
        c
        for c in manifest["cells"]
        if table["rows"] in c["factors"]
        and table["cols"] in c["factors"]
        and all(c["factors"].get(k) == v for k, v in table["where"].items())
    ]
    rows, cols = _ordered_values(cells, table["rows"]), _ordered_values(cells, table["cols"])
    entries, walls, in_grid = [], [], []
    for r in rows:
        entry_row, wall_row, grid_row = [], [], []
        for c in cols:
            match = [x for x in cells if x["factors"][table["rows"]] == r and x["factors"][table["cols"]] == c]
            grid_row.append(bool(match))
            if len(match) > 1:
                names = ", ".join(x["name"] for x in match)
                raise VLAJaxError(
                    f"table {table['title']!r}: cells {names} share {table['rows']}={r}, {table['cols']}={c}; "
                    "add Table(where={...}) to pick one"
                )
            seeds = results.get(match[0]["name"], {}).values() if match else []
            vals = [metric_value(s["summary"], table["metric"]) for s in seeds]
            entry_row.append(aggregate([v for v in vals if v is not None and math.isfinite(v)]))
            wall_row.append(aggregate([s["train_wall_seconds"] for s in seeds if s["train_wall_seconds"] is not None]))
        entries.append(entry_row)
        walls.append(wall_row)
        in_grid.append(grid_row)
    return {
        **table,
        "row_values": rows,
        "col_values": cols,
        "entries": entries,
        "train_wall_seconds": walls,
        "in_grid": in_grid,  # False: the study defines no cell for this row x column (shown as "-")
    }


def format_entry(entry: Mapping[str, Any] | None, scale: float, digits: int, seeds: int, in_grid: bool = True) -> str:
    if not in_grid:
        return "-"
    if entry is None:
        return "missing"
    text = f"{entry['mean'] * scale:.{digits}f}"
    if entry["std"] is not None:
        text += f" ± {entry['std'] * scale:.{digits}f}"
    return text + (f" (n={entry['n']})" if entry["n"] == seeds else f" (n={entry['n']} of {seeds})")


def _markdown_grid(built: Mapping[str, Any], grid: list[list], scale: float, digits: int, seeds: int) -> list[str]:
    header = f"| {built['rows']} \\ {built['cols']} | " + " | ".join(str(c) for c in built["col_values"]) + " |"
    lines = [header, "|" + "---|" * (len(built["col_values"]) + 1)]
    for r, row, grid_row in zip(built["row_values"], grid, built["in_grid"], strict=True):
        cells = (format_entry(e, scale, digits, seeds, g) for e, g in zip(row, grid_row, strict=True))
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return lines


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower() or "table"


def markdown(manifest: Mapping[str, Any], tables: list[dict], out: Path) -> str:
    seeds = len(manifest["seeds"])
    lines = [
        f"# Study `{manifest['name']}`",
        "",
        f"Seeds {manifest['seeds']}; each entry: mean ± sample std over the seeds with a finished evaluation "
        "(n of them); `missing` = not run or not finished (never counted as 0); `-` = no such cell in this study.",
        "",
    ]
    for built in tables:
        unit = " (%)" if built["percent"] else ""
        where = f", where {built['where']}" if built["where"] else ""
        lines += [f"## {built['title']}{unit}", "", f"metric `{built['metric']}`{where}", ""]
        lines += _markdown_grid(built, built["entries"], 100.0 if built["percent"] else 1.0, 1, seeds)
        lines += ["", "train wall seconds per run (compile included):", ""]
        lines += _markdown_grid(built, built["train_wall_seconds"], 1.0, 0, seeds)
        lines += ["", f"![{built['title']}]({built['plot']})", ""]
    lines.append(f"Total wall time of the finished steps: {manifest.get('total_wall_seconds', 0):.0f} s.")
    runs = manifest.get("runs", [])
    if runs:
        elapsed = sum(r["elapsed_seconds"] for r in runs)
        jobs = sorted({r["jobs"] for r in runs})
        lines.append(
            f"Elapsed (`vla-jax study` invocations that ran steps, --jobs {'/'.join(map(str, jobs))}): "
            f"{elapsed:.0f} s in {len(runs)} run(s), load average {runs[-1].get('load_average', '?')} at the end "
            "of the last."
        )
    return "\n".join(lines) + "\n"


def write_report(out: Path) -> dict[str, Any]:
    """OUT/study.md, OUT/study.json and OUT/study_<table>.png from what OUT holds now."""
    manifest = read_manifest(out)
    results = collect(out, manifest)
    total = 0.0
    for step_id in manifest["keys"]:
        marker = read_marker(out, step_id)
        if marker and marker.get("key") == manifest["keys"][step_id]:
            total += marker.get("wall_seconds", 0.0)
    manifest = {**manifest, "total_wall_seconds": round(total, 1), "runs": read_runs(out)}
    tables = []
    for table in manifest["tables"]:
        built = build_table(table, manifest, results)
        built["plot"] = f"study_{slug(table['title'])}.png"
        plot.table_bars(built, out / built["plot"])
        tables.append(built)
    report = {
        "study": manifest["name"],
        "seeds": manifest["seeds"],
        "total_wall_seconds": manifest["total_wall_seconds"],
        "runs": manifest["runs"],
        "tables": tables,
        "cells": {
            c["name"]: {
                "factors": c["factors"],
                "seeds": {
                    s: {
                        "metrics": {t["metric"]: metric_value(r["summary"], t["metric"]) for t in manifest["tables"]},
                        **{k: v for k, v in r.items() if k != "summary"},
                    }
                    for s, r in results[c["name"]].items()
                },
            }
            for c in manifest["cells"]
        },
    }
    (out / "study.json").write_text(json.dumps(report, indent=2))
    (out / "study.md").write_text(markdown(manifest, tables, out))
    return report
