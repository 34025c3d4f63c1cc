"""Top-down trajectory plots and rollout GIFs of a closed-loop evaluation."""

from __future__ import annotations

import math
from pathlib import Path

import imageio.v2 as imageio
import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import patches  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from vla_jax.evaluate.closed_loop import EpisodeResult  # noqa: E402
from vla_jax.sim.success import TARGET_REGION  # noqa: E402

_SIDE_COLOR = {"left": "tab:blue", "right": "tab:orange"}


def _draw_world(ax, layout) -> None:
    for o in layout.obstacles:
        # Plot axes: forward (x) up, robot's left (+y) to the left, as seen from above behind the robot.
        if o.kind == "pot":
            ax.add_patch(patches.Circle((-o.y, o.x), o.half_x, color=o.rgba[:3]))
        else:
            ax.add_patch(
                patches.Rectangle((-o.y - o.half_y, o.x - o.half_x), 2 * o.half_y, 2 * o.half_x, color=o.rgba[:3])
            )
    tx, ty = layout.target_xy
    ax.add_patch(patches.Circle((-ty, tx), layout.target_radius, color="0.5"))
    ax.add_patch(patches.Circle((-ty, tx), TARGET_REGION, fill=False, ls="--", color="0.4"))


def trajectory_plot(
    results: list[EpisodeResult], path: str | Path, *, max_pairs: int = 12, title: str | None = None
) -> Path:
    """One panel per left/right pair: the world and both driven paths (solid = success, dotted = failure)."""
    by_pair: dict[int, list[EpisodeResult]] = {}
    for r in results:
        by_pair.setdefault(r.pair, []).append(r)
    pairs = list(by_pair.values())[:max_pairs]
    cols = min(6, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 3.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, pair in zip(axes.flat, pairs):
        ax.set_axis_on()
        _draw_world(ax, pair[0].layout)
        for r in pair:
            xy = r.path
            ax.plot(
                -xy[:, 1], xy[:, 0], color=_SIDE_COLOR[r.scenario.side], ls="-" if r.outcome.success else ":", lw=1.8
            )
            if r.outcome.collided:
                ax.plot(-xy[-1, 1], xy[-1, 0], "x", color="red", ms=8, mew=2)
        s = pair[0].scenario
        ax.set_title(f"{s.layout_type} {s.kind}\n{s.distance}", fontsize=8)
        ax.set_aspect("equal")
        ax.set_xlim(-1.2, 1.2)
        ax.set_ylim(-0.3, 3.0)
        ax.tick_params(labelsize=6)
    handles = [Line2D([], [], color=c, label=f"told {side}") for side, c in _SIDE_COLOR.items()]
    handles += [Line2D([], [], color="k", ls=":", label="failed")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97 if title else 1))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def rollout_gifs(results: list[EpisodeResult], out_dir: str | Path, *, fps: float = 2.5) -> list[Path]:
    """One GIF per recorded episode (camera view, 0.4 s per frame in real time)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for k, r in enumerate(results):
        if not r.frames:
            continue
        verdict = "ok" if r.outcome.success else "fail"
        path = out / f"rollout_{k:02d}_{r.scenario.tokens}_{verdict}.gif"
        imageio.mimsave(path, [np.asarray(f, np.uint8) for f in r.frames], duration=1.0 / fps, loop=0)
        written.append(path)
    return written
