"""Meta-World results next to the published ones: text table, bar chart (PNG), rollout GIFs.

Published MT50 success rates (%), 10 trials per task, as reported in the SmolVLA
paper (Shukor et al. 2025, "SmolVLA: A Vision-Language-Action Model for
Affordable and Efficient Robotics", Meta-World table; the paper states each
model's training data and budget; LeRobot's published MT50 set has 50 scripted
demonstrations per task). They are *their* numbers, printed beside ours for
scale, never mixed into ours; model sizes only where the paper gives them.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import matplotlib

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vla_jax.evaluate.metaworld import EpisodeResult  # noqa: E402
from vla_jax.sim.metaworld.tasks import GROUP_ORDER  # noqa: E402

SOURCE = "SmolVLA paper (Shukor et al. 2025), Meta-World MT50, 10 trials per task"
# name -> (model size, success % per group easy / medium / hard / very hard, average)
PUBLISHED: dict[str, tuple[str, tuple[float, float, float, float], float]] = {
    "Diffusion Policy": ("size not stated", (23.1, 10.7, 1.9, 6.1), 10.5),
    "TinyVLA": ("size not stated", (77.6, 21.5, 11.4, 15.8), 31.6),
    "pi0": ("3.5B", (71.8, 48.2, 41.7, 30.0), 47.9),
    "SmolVLA": ("0.45B", (82.5, 41.8, 45.0, 60.0), 57.3),
}
_GROUP_LABEL = {"easy": "easy", "medium": "medium", "hard": "hard", "very_hard": "very hard"}


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:5.1f}"


def format_table(summary: dict, label: str = "ours") -> str:
    """Per-task rows, then the difficulty table with the published rows (theirs) beside ours."""
    lines = [f"{'task':<30}{'group':<11}{'n':>4}{'success':>9}{'steps':>7}", "-" * 61]
    for task, v in summary["per_task"].items():
        lines.append(f"{task:<30}{v['difficulty']:<11}{v['episodes']:>4}{_pct(v['success']):>9}{v['mean_steps']:>7.0f}")
    groups = summary["per_difficulty"]
    head = f"{'success %':<44}" + "".join(f"{_GROUP_LABEL[g]:>10}" for g in GROUP_ORDER) + f"{'average':>10}"
    lines += ["", head, "-" * len(head)]
    ours = "".join(f"{_pct(groups[g]['success'] if g in groups else None):>10}" for g in GROUP_ORDER)
    lines.append(f"{label + ' (this run)':<44}{ours}{_pct(summary['average']):>10}")
    for name, (size, rates, avg) in PUBLISHED.items():
        row = "".join(f"{r:>10.1f}" for r in rates)
        lines.append(f"{'theirs: ' + name + ' (' + size + ')':<44}{row}{avg:>10.1f}")
    missing = [_GROUP_LABEL[g] for g in GROUP_ORDER if g not in groups]
    if missing:
        lines.append(f"(this run has no tasks in: {', '.join(missing)}; its average is over the groups it has)")
    lines.append(f"published rows: {SOURCE}")
    return "\n".join(lines)


def difficulty_plot(summary: dict, path: str | Path, title: str) -> Path:
    """Grouped bars per difficulty: this run beside the published models."""
    groups = summary["per_difficulty"]
    labels = [_GROUP_LABEL[g] for g in GROUP_ORDER] + ["average"]
    rows = {
        "this run": [100 * groups[g]["success"] if g in groups else np.nan for g in GROUP_ORDER]
        + [100 * summary["average"]]
    }
    for name, (size, rates, avg) in PUBLISHED.items():
        rows[f"{name} ({size}, published)"] = [*rates, avg]
    x = np.arange(len(labels))
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for i, (name, values) in enumerate(rows.items()):
        ax.bar(
            x + (i - (len(rows) - 1) / 2) * width,
            values,
            width,
            label=name,
            color="black" if name == "this run" else None,
            alpha=1.0 if name == "this run" else 0.55,
        )
    ax.set_xticks(x, labels)
    ax.set_ylabel("success (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False, ncol=2)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def rollout_gifs(results: list[EpisodeResult], out_dir: str | Path, fps: float = 20.0) -> list[Path]:
    """One GIF per recorded episode (every 2nd frame: Meta-World runs at 80 Hz, 500 steps are 6 s)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for r in results:
        if not r.frames:
            continue
        path = out / f"{r.task}_seed{r.seed}_{'ok' if r.success else 'fail'}.gif"
        imageio.mimsave(path, [np.asarray(f, np.uint8) for f in r.frames[::2]], duration=1.0 / fps, loop=0)
        written.append(path)
    return written
