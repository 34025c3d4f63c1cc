"""A study table as a PNG: grouped bars with the spread over seeds as error bars; a missing entry is labelled."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402


def table_bars(built: Mapping[str, Any], path: Path) -> None:
    """Grouped bars: one group per column value, one bar per row value, error bars = std; missing = no bar."""
    scale = 100.0 if built["percent"] else 1.0
    rows, cols = built["row_values"], built["col_values"]
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(cols) * max(1, len(rows)) * 0.5, 3.2))
    for i, (r, row) in enumerate(zip(rows, built["entries"], strict=True)):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(cols))]
        for x, e in zip(xs, row, strict=True):
            if e is None:
                ax.text(x, 0, "missing", rotation=90, ha="center", va="bottom", fontsize=7, color="gray")
        present = [(x, e) for x, e in zip(xs, row, strict=True) if e is not None]
        ax.bar(
            [x for x, _ in present],
            [e["mean"] * scale for _, e in present],
            width,
            yerr=[(e["std"] or 0.0) * scale for _, e in present],
            capsize=3,
            label=str(r),
        )
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_xlabel(built["cols"])
    ax.set_ylabel(built["metric"] + (" (%)" if built["percent"] else ""))
    ax.set_title(built["title"], fontsize=10)
    ax.legend(title=built["rows"], fontsize=7, title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
