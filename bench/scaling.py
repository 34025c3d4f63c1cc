"""Scaling curves: how the train step's time and memory and the robot step's latency grow with the window,
the batch, the backbone and the structure; and the analytic FLOPs per frame of every backbone x structure
at full size.

    python -m bench.scaling            # demo width (configs/demo.py's backbone), CPU: ~15 min on 2 cores
    python -m bench.scaling --quick    # configs/tiny.py's program, one train point (the smoke test)

Writes bench/results/scaling.json and scaling.png. What is measured, per point:

* **train step** (the trainer's own jitted step, `bench.common.JaxTrainStep`: forward, backward,
  clip, AdamW; float32, one CPU device): median wall seconds over ``--steps`` steps after one
  warm-up, and the step's peak memory as XLA's buffer assignment states it (`Compiled.memory_analysis`:
  arguments + outputs - donated aliases + temporaries; exact for the compiled program and
  independent of what else runs on the host, unlike a process RSS on a shared machine);
  axes: window (1, 2, 4, 8, 16) x structure at batch 4; batch (1, 2, 4, 8, 16) at window 4
  (policy_head/lstm); backbone family (each family's ``tiny()``: 32 wide, 2 layers) at window 4,
  batch 4, policy_head/lstm;
* **robot step** (`vla_runtime.Policy.step`, incremental, batch 1, 1 torch thread, frames at the
  model's size): median per-step ms after the window has slid, per structure and window;
* **FLOPs** (`bench.flops`, no timing): train-step model FLOPs per frame at full size for every
  backbone's ``full()`` x structure at window 16, and Kosmos-2's per window, with the decoder's
  attention share (the only term that is not linear in the tokens).

The 1-minute load average is recorded with every timed point (the host is shared).
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from bench import common, flops

STRUCTURES = (
    ("policy_head", "lstm"),
    ("interleaved", "mlp"),
    ("one_step_continuous", "mlp"),
    ("one_step_discrete", "discrete"),
)
FAMILIES = ("kosmos-2", "paligemma", "smolvlm", "clip-kosmos-2")
INSTRUCTION_LENGTH = 8  # timed points
FULL_INSTRUCTION_LENGTH = 32  # the FLOP table: configs/pretrain_oxe_kosmos2.py's instruction budget


def _load1() -> float:
    return round(os.getloadavg()[0], 2)


def backbone_for(family: str, width: str):
    """The backbone config of a point: configs/demo.py's Kosmos-2 ("demo"), or a family's tiny() ("tiny")."""
    from vla_jax.models import backbone as backbone_lib

    if width in ("demo", "quick") and family == "kosmos-2":
        from bench.common import load_config_file, repo_root

        path = "configs/demo.py" if width == "demo" else "configs/tiny.py"
        model = load_config_file(str(repo_root() / path), "unused").model
        return backbone_lib.config_from_dict(model.backbone.to_dict())
    cls = backbone_lib.family(family).config_cls
    return cls.tiny(text={"dropout": 0.0}) if family in ("kosmos-2", "clip-kosmos-2") else cls.tiny()


def vla_for(backbone, structure: str, head: str, window: int):
    from vla_jax.vla import VLAConfig

    return VLAConfig(
        backbone=backbone,
        structure=structure,
        head=head,
        window_size=window,
        action_chunk=4,
        action_dim=2,
        has_gripper=False,
        head_hidden_size=64,
        head_layers=1,
    )


def train_config_for(vcfg, batch: int):
    model = vcfg.to_dict()
    model["backbone"] = vcfg.backbone.to_dict()
    return common.train_config(model, batch_size=batch, instruction_length=INSTRUCTION_LENGTH)


def peak_bytes(compiled) -> int | None:
    """XLA's buffer-assignment peak of a compiled step (None where the backend does not report it)."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - a backend without memory stats: the point simply has none
        return None
    if m is None:
        return None
    peak = getattr(m, "peak_memory_in_bytes", 0)
    if peak:
        return int(peak)
    return int(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes)


def build_point(family: str, width: str, structure: str, head: str, window: int, batch: int, fast: bool) -> dict:
    """A compiled train step of one point and what it costs by construction (compile, memory, FLOPs); timed later."""
    if width == "quick":  # the smoke test's shared toy program (common.quick_train_config): compiled once there
        config = common.quick_train_config()
        config.model.update(structure=structure, head=head, window_size=window)
        config.batch_size = batch
        vcfg = common.vla_config_of(config)
    else:
        vcfg = vla_for(backbone_for(family, width), structure, head, window)
        config = train_config_for(vcfg, batch)
    config.xla_fast_compile = fast
    step = common.JaxTrainStep(config)
    placed = step.place(common.random_batch(config, seed=0))
    compile_s = step.compile_seconds(placed)
    common.jax_sync(step(placed)["loss"])  # warm-up, excluded
    count = flops.train_step_flops(vcfg, batch, INSTRUCTION_LENGTH)
    info = {
        "backbone": family,
        "width": width,
        "structure": structure,
        "head": head,
        "window": window,
        "batch": batch,
        "params": step.num_params,
        "image_tokens": vcfg.backbone.image_tokens,
        "decoder_sequence": flops.sequence_length(vcfg, INSTRUCTION_LENGTH),
        "compile_s": compile_s,
        "peak_bytes": peak_bytes(step.step_fn),
        "model_gflop_per_step": count["train_step_total"] / 1e9,
    }
    return {"info": info, "run": lambda: common.jax_sync(step(placed)["loss"]), "times": [], "loads": []}


class TrainPoints:
    """The train points of every axis: each compiled once (a point shared by two axes, e.g. window 4 /
    batch 4, is one point), then timed in interleaved rounds (`time_rounds`), so the shared host's load,
    which moves several-fold within minutes, hits every point alike and the curves' ratios are robust."""

    def __init__(self, fast_compile: bool = False):
        self.points: dict[tuple, dict] = {}
        self.fast_compile = fast_compile

    def __call__(self, family, width, structure, head, window, batch) -> tuple:
        key = (family, width, structure, head, window, batch)
        if key not in self.points:
            t0 = time.perf_counter()
            self.points[key] = build_point(*key, fast=self.fast_compile)
            print(f"  built {key} in {time.perf_counter() - t0:.0f} s (load {_load1()})", flush=True)
        return key

    def time_rounds(self, rounds: int, steps: int) -> None:
        for r in range(rounds):
            for point in self.points.values():
                point["times"] += common.time_calls(point["run"], warmup=0, iters=steps)
                point["loads"].append(_load1())
            print(f"  round {r + 1}/{rounds} done (load {_load1()})", flush=True)

    def result(self, key) -> dict:
        p = self.points[key]
        s = common.summary(p["times"])
        info = p["info"]
        return {
            **info,
            "step": s,
            "ms_per_frame": 1e3 * s["median_s"] / (info["batch"] * info["window"]),
            "load_1min": [min(p["loads"]), max(p["loads"])],
        }


def runtime_points(width: str, windows, structures, steps: int) -> list[dict]:
    """Incremental `Policy.step` latency per structure and window on float32 exports of random weights."""
    import jax
    import torch

    from bench.runtime_latency import export_small
    from vla_jax.models import backbone as backbone_lib
    from vla_jax.vla import init_policy
    from vla_runtime import Policy

    torch.set_num_threads(1)
    bb = backbone_for("kosmos-2", width)
    backbone_params = jax.device_get(backbone_lib.init_params(bb, 0))
    rng = np.random.default_rng(0)
    out = []
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        for structure, head in structures:
            for window in windows:
                vcfg = vla_for(bb, structure, head, window)
                params = jax.device_get(init_policy(vcfg, 0, backbone_params=backbone_params))
                path = os.path.join(tmp, f"{structure}_{window}")
                export_small(vcfg, params, path, "float32")
                policy = Policy.load(path, incremental=True)
                policy.reset("go left")
                size = bb.image_size
                frames = rng.integers(0, 256, (window + steps + 2, size, size, 3), dtype=np.uint8)
                for f in frames[: window + 1]:  # fill the window, then one more: the sliding regime
                    policy.step(f)
                it = iter(frames[window + 1 :])
                s = common.summary(common.time_calls(lambda p=policy, i=it: p.step(next(i)), warmup=1, iters=steps))
                out.append({"structure": structure, "head": head, "window": window, "step": s, "load_1min": _load1()})
                print(f"  runtime {structure} w{window}: {s['median_s'] * 1e3:.2f} ms", flush=True)
    return out


def full_size_flops(windows) -> dict:
    """Train-step model FLOPs per frame at full size: every family x structure at window 16, Kosmos-2 per window."""
    from vla_jax.models import backbone as backbone_lib

    table = []
    for family in FAMILIES:
        bb = backbone_lib.family(family).config_cls.full()
        for structure, head in STRUCTURES:
            vcfg = vla_for(bb, structure, head, 16).replace(action_chunk=10, action_dim=7, has_gripper=True)
            c = flops.train_step_flops(vcfg, 1, FULL_INSTRUCTION_LENGTH)
            table.append(
                {
                    "backbone": family,
                    "structure": structure,
                    "window": 16,
                    "tflop_per_frame": c["train_step_total"] / c["frames_per_step"] / 1e12,
                    "decoder_attention_share": c["decoder_attention_forward"] / c["forward_total"],
                    "decoder_sequence": flops.sequence_length(vcfg, FULL_INSTRUCTION_LENGTH),
                }
            )
    per_window = []
    bb = backbone_lib.family("kosmos-2").config_cls.full()
    for structure, head in STRUCTURES:
        for w in windows:
            vcfg = vla_for(bb, structure, head, w).replace(action_chunk=10, action_dim=7, has_gripper=True)
            c = flops.train_step_flops(vcfg, 1, FULL_INSTRUCTION_LENGTH)
            per_window.append(
                {
                    "structure": structure,
                    "window": w,
                    "tflop_per_frame": c["train_step_total"] / c["frames_per_step"] / 1e12,
                    "decoder_attention_share": c["decoder_attention_forward"] / c["forward_total"],
                }
            )
    return {
        "instruction_length": FULL_INSTRUCTION_LENGTH,
        "by_backbone_structure": table,
        "kosmos2_by_window": per_window,
    }


def plot(result: dict, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    fig, axes = plt.subplots(2, 3, figsize=(15, 8), dpi=100)
    win = result["train"]["by_window"]
    for structure, _ in STRUCTURES:
        pts = [p for p in win if p["structure"] == structure]
        if not pts:
            continue
        w = [p["window"] for p in pts]
        axes[0, 0].plot(w, [p["step"]["median_s"] * 1e3 for p in pts], "o-", label=structure)
        if all(p["peak_bytes"] for p in pts):
            axes[0, 1].plot(w, [p["peak_bytes"] / 2**20 for p in pts], "o-", label=structure)
    for ax, title, ylabel in (
        (axes[0, 0], "train step vs window (batch fixed)", "ms / step"),
        (axes[0, 1], "train step peak memory (XLA) vs window", "MiB"),
    ):
        ax.set(title=title, xlabel="window T", ylabel=ylabel, xscale="log", yscale="log")
        ax.set_xticks([p for p in sorted({p["window"] for p in win})], minor=False)
        ax.get_xaxis().set_major_formatter(ScalarFormatter())
        ax.legend(fontsize=7)
    bat = result["train"]["by_batch"]
    axes[0, 2].plot([p["batch"] for p in bat], [p["step"]["median_s"] * 1e3 for p in bat], "o-", label="ms / step")
    axes[0, 2].set(title="train step vs batch (policy_head/lstm)", xlabel="batch", ylabel="ms / step", xscale="log")
    axes[0, 2].set_yscale("log")
    bbs = result["train"]["by_backbone"]
    axes[1, 0].bar([p["backbone"] for p in bbs], [p["step"]["median_s"] * 1e3 for p in bbs])
    axes[1, 0].set(title="train step vs backbone (tiny, policy_head/lstm)", ylabel="ms / step")
    axes[1, 0].tick_params(axis="x", labelsize=7)
    rt = result["runtime"]
    for structure, _ in STRUCTURES:
        pts = [p for p in rt if p["structure"] == structure]
        if pts:
            axes[1, 1].plot(
                [p["window"] for p in pts], [p["step"]["median_s"] * 1e3 for p in pts], "o-", label=structure
            )
    axes[1, 1].set(title="robot step (incremental) vs window", xlabel="window T", ylabel="ms / step", xscale="log")
    axes[1, 1].legend(fontsize=7)
    fl = result["flops"]["kosmos2_by_window"]
    for structure, _ in STRUCTURES:
        pts = [p for p in fl if p["structure"] == structure]
        axes[1, 2].plot([p["window"] for p in pts], [p["tflop_per_frame"] for p in pts], "o-", label=structure)
    axes[1, 2].set(
        title="full Kosmos-2: train TFLOP per frame vs window", xlabel="window T", ylabel="TFLOP", xscale="log"
    )
    axes[1, 2].legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def run(args) -> dict:
    width = "quick" if args.quick else "demo"
    points = TrainPoints(args.fast_compile)
    structures = [s for s in STRUCTURES if s[0] in args.structures]
    keys_window = [points("kosmos-2", width, st, head, w, args.batch) for st, head in structures for w in args.windows]
    keys_batch = [points("kosmos-2", width, "policy_head", "lstm", args.window, b) for b in args.batches]
    bb_width = "quick" if args.quick else "tiny"
    keys_bb = [points(f, bb_width, "policy_head", "lstm", args.window, args.batch) for f in args.backbones]
    points.time_rounds(args.rounds, args.steps)
    by_window, by_batch, by_backbone = ([points.result(k) for k in keys] for keys in (keys_window, keys_batch, keys_bb))
    runtime = runtime_points(width, args.runtime_windows, structures, args.runtime_steps)
    result = {
        "benchmark": "scaling",
        "quick": bool(args.quick),
        "machine": common.machine_info(),
        "fast_compile": bool(args.fast_compile),
        "train": {"by_window": by_window, "by_batch": by_batch, "by_backbone": by_backbone},
        "runtime": runtime,
        "flops": full_size_flops(args.windows if not args.quick else (1, 2, 4, 8, 16)),
    }
    result["plot"] = plot(result, os.path.splitext(args.out)[0] + ".png")
    common.print_table(
        f"train step vs window ({width} width, batch {args.batch}, float32, CPU)",
        ["structure", "window", "ms/step", "ms/frame", "peak MiB", "load"],
        [
            [
                p["structure"],
                p["window"],
                p["step"]["median_s"] * 1e3,
                p["ms_per_frame"],
                (p["peak_bytes"] or 0) / 2**20,
                p["load_1min"],
            ]
            for p in by_window
        ],
    )
    common.print_table(
        "robot step (incremental) vs window",
        ["structure", "window", "ms/step", "load"],
        [[p["structure"], p["window"], p["step"]["median_s"] * 1e3, p["load_1min"]] for p in runtime],
    )
    return result


def main(argv=None) -> int:
    p = common.parser("scaling", str(__doc__).splitlines()[0])
    p.add_argument("--steps", type=int, default=0, help="timed train steps per point and round (default 3; quick 2)")
    p.add_argument(
        "--rounds", type=int, default=0, help="interleaved timing rounds over all points (default 4; quick 1)"
    )
    p.add_argument("--runtime-steps", type=int, default=0, help="timed robot steps per point (default 30; quick 3)")
    p.add_argument("--windows", type=int, nargs="+", default=None, help="default 1 2 4 8 16 (quick 2)")
    p.add_argument("--batches", type=int, nargs="+", default=None, help="default 1 2 4 8 16 (quick 8)")
    p.add_argument("--batch", type=int, default=0, help="batch of the window and backbone axes (default 4; quick 8)")
    p.add_argument("--window", type=int, default=0, help="window of the batch and backbone axes (default 4; quick 2)")
    p.add_argument("--backbones", nargs="+", default=None, choices=FAMILIES, help="default all four (quick kosmos-2)")
    p.add_argument("--structures", nargs="+", default=None, choices=[s for s, _ in STRUCTURES])
    p.add_argument("--runtime-windows", type=int, nargs="+", default=None, help="default 1 2 4 8 16 (quick 1 2)")
    p.add_argument(
        "--fast-compile",
        action="store_true",
        help="compile the train steps with vla_jax.train.step.FAST_COMPILE_OPTIONS (cheap LLVM: minutes less "
        "per point on a loaded host; matmuls are library calls either way, fused elementwise code is slower)",
    )
    args = p.parse_args(argv)
    q = args.quick
    args.steps = args.steps or (2 if q else 3)
    args.rounds = args.rounds or (1 if q else 4)
    args.runtime_steps = args.runtime_steps or (3 if q else 30)
    args.windows = args.windows or ([2] if q else [1, 2, 4, 8, 16])
    args.batches = args.batches or ([8] if q else [1, 2, 4, 8, 16])
    args.batch = args.batch or (8 if q else 4)
    args.window = args.window or (2 if q else 4)
    args.backbones = args.backbones or (["kosmos-2"] if q else list(FAMILIES))
    args.structures = args.structures or (["policy_head"] if q else [s for s, _ in STRUCTURES])
    args.runtime_windows = args.runtime_windows or ([1, 2] if q else [1, 2, 4, 8, 16])
    common.write_result(args.out, run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
