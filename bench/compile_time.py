"""Compile time of the train step vs depth: towers stacked with `nn.scan` vs unrolled Python loops.

    python -m bench.compile_time            # 2, 8, 24 layers in both towers (a few minutes), plot PNG
    python -m bench.compile_time --quick    # configs/tiny.py (2 layers), scanned and unrolled (smoke test)

The model is the policy-head VLA with small widths (vision and text 64 wide, 32 px, LSTM head), so
the numbers are dominated by what depth does to the XLA program, not by the arithmetic. Each point
is the trainer's full step (`vla_jax.train.step`: forward, backward, clip, AdamW) lowered and
compiled once, in a fresh jit, with JAX's persistent compilation cache switched off (a cache hit
would measure nothing; --quick leaves it on, so the smoke test reuses the step it compiled
already). Lowering (tracing to StableHLO) and XLA compilation are reported apart.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from bench import common


def config_for(layers: int, scan: bool, quick: bool):
    from vla_jax.models.kosmos2 import Kosmos2Config

    base = common.quick_train_config()
    if not quick:  # small widths, but wide enough that a layer is a realistic block of ops
        base.model.backbone = dataclasses.asdict(
            Kosmos2Config.tiny(
                vision={"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4},
                text={"embed_dim": 64, "ffn_dim": 128, "attention_heads": 4, "dropout": 0.0},
                latent_query_num=16,
            )
        )
    base.model.backbone.vision.num_hidden_layers = layers
    base.model.backbone.text.layers = layers
    base.model.backbone.scan_layers = scan
    return base


def measure(layers: int, scan: bool, quick: bool) -> dict:
    step = common.JaxTrainStep(config_for(layers, scan, quick))
    batch = step.place(common.random_batch(step.config))
    c0, t0 = time.process_time(), time.perf_counter()
    lowered = step.step_fn.lower(step.state, batch)
    t1 = time.perf_counter()
    lowered.compile()
    c2, t2 = time.process_time(), time.perf_counter()
    # CPU seconds too: on a shared host the wall time mostly measures the other jobs.
    return {
        "layers": layers,
        "scan": scan,
        "lower_s": t1 - t0,
        "compile_s": t2 - t1,
        "total_s": t2 - t0,
        "total_cpu_s": c2 - c0,
        "load_1min": round(os.getloadavg()[0], 2),
        "params": step.num_params,
    }


def plot(points: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for scan, label, marker in ((True, "nn.scan (ours, default)", "o"), (False, "unrolled", "s")):
        pts = sorted((p for p in points if p["scan"] == scan), key=lambda p: p["layers"])
        ax.plot([p["layers"] for p in pts], [p["total_cpu_s"] for p in pts], marker=marker, label=label)
    ax.set_xlabel("layers per tower (vision and text)")
    ax.set_ylabel("lower + compile of the train step [CPU s]")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def run(args) -> dict:
    import jax

    if not args.quick:  # a persistent-cache hit would measure nothing (quick only checks the harness)
        jax.config.update("jax_enable_compilation_cache", False)
    depths = [2] if args.quick else args.layers
    points = []
    for layers in depths:
        for scan in (True, False):
            p = measure(layers, scan, args.quick)
            print(
                f"layers {layers:3d} {'scan  ' if scan else 'unroll'}: lower {p['lower_s']:.2f} s, "
                f"compile {p['compile_s']:.2f} s, {p['total_cpu_s']:.1f} CPU s (load {p['load_1min']})",
                flush=True,
            )
            points.append(p)
    machine = common.machine_info()
    png = Path(args.plot or Path(args.out).with_suffix(".png"))
    plot(points, png, f"train step compile time, {machine['cpu_model']} ({machine['date_utc'][:10]})")
    by = {(p["layers"], p["scan"]): p["total_cpu_s"] for p in points}
    deepest, shallowest = max(depths), min(depths)
    result = {
        "benchmark": "compile_time",
        "quick": bool(args.quick),
        "machine": machine,
        "model": "configs/tiny.py" if args.quick else "vision/text 64 wide, 32 px, 16 latents, LSTM 32x1",
        "points": points,
        "unrolled_over_scan_at_max_depth": by[(deepest, False)] / by[(deepest, True)],
        "scan_growth": by[(deepest, True)] / by[(shallowest, True)],
        "unrolled_growth": by[(deepest, False)] / by[(shallowest, False)],
        "plot": str(png),
    }
    common.print_table(
        "train-step lower+compile [CPU s]",
        ["layers", "scan", "unrolled", "unrolled/scan"],
        [[d, by[(d, True)], by[(d, False)], by[(d, False)] / by[(d, True)]] for d in depths],
    )
    print(f"plot: {png}")
    return result


def main(argv=None) -> int:
    p = common.parser("compile_time", __doc__.splitlines()[0])
    p.add_argument("--layers", type=int, nargs="+", default=[2, 8, 24], help="depths to compile (full run)")
    p.add_argument("--plot", default=None, help="PNG path (default: next to --out)")
    args = p.parse_args(argv)
    common.write_result(args.out, run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
