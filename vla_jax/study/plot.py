"""A study table as a PNG: grouped bars with the spread over seeds as error bars; a missing entry is labelled."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import patches  # noqa: E402


def table_bars(built: Mapping[str, Any], path: Path) -> None:
    """Grouped bars: one group per column value, one bar per row value, error bars = std; missing = no bar
    and a "missing" label (a cell the study does not define: no bar, no label)."""
    scale = 100.0 if built["percent"] else 1.0
    rows, cols = built["row_values"], built["col_values"]
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.5 + 0.45 * len(cols) * max(1, len(rows))), 3.4))
    in_grid = built.get("in_grid") or [[True] * len(cols) for _ in rows]
    for i, (row, grid_row) in enumerate(zip(built["entries"], in_grid, strict=True)):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(cols))]
        for x, e, g in zip(xs, row, grid_row, strict=True):
            if e is None and g:  # a cell outside the study's grid gets no label
                ax.text(x, 0, "missing", rotation=90, ha="center", va="bottom", fontsize=7, color="gray")
        present = [(x, e) for x, e in zip(xs, row, strict=True) if e is not None]
        color = f"C{i % 10}"  # fixed per row: a row with nothing finished keeps its legend colour
        ax.bar([x for x, _ in present], [e["mean"] * scale for _, e in present], width, color=color)
        spread = [(x, e) for x, e in present if e["std"] is not None]  # n = 1 has no spread to draw
        if spread:
            ax.errorbar(
                [x for x, _ in spread],
                [e["mean"] * scale for _, e in spread],
                yerr=[e["std"] * scale for _, e in spread],
                fmt="none",
                ecolor="black",
                capsize=3,
            )
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_xlim(-0.5, len(cols) - 0.5)  # text does not autoscale: keep every group, missing ones too, in view
    ax.set_xlabel(built["cols"])
    ax.set_ylabel(built["metric"] + (" (%)" if built["percent"] else ""))
    ax.set_title(built["title"], fontsize=10)
    handles = [patches.Patch(color=f"C{i % 10}", label=str(r)) for i, r in enumerate(rows)]
    ax.legend(handles=handles, title=built["rows"], fontsize=7, title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
