"""Where each side's train step spends its time: ours (XLA:CPU thunks) vs torch eager (aten ops), matmuls vs the rest.

    python -m bench.train_step_profile              # bench.train_step_vs_torch's model, batch and optimizer
    python -m bench.train_step_profile --quick      # toy size, seconds (smoke test)

The question it answers (issue 16): if ours is not 1.5x ahead of torch, is the gap in the matmuls (the CPU's
GEMM library: YNNPACK under XLA, oneDNN / MKL under torch) or in what a compiler can fuse (elementwise,
optimizer, layout copies)? Both sides are profiled in one process on identical weights and batch:

- ours: the trainer's jitted step under `jax.profiler.trace` with XLA's per-thunk trace events
  (`--xla_cpu_enable_xprof_traceme`); every thunk event on XLA's threads is one op, named by its fusion kind;
- torch: the same step as `bench.train_step_vs_torch` under `torch.profiler`, every aten op's self time
  (so wrappers such as `aten::linear` do not count their matmul twice).

Per step it reports the op time of the matmuls (ours: `ynn_fusion` / `xnn_fusion` / `dot` / `convolution`
thunks; torch: mm / addmm / bmm / baddbmm / convolution / the oneDNN LSTM layer / fused CPU attention)
and of everything else, next to the step's wall time outside the profiler. Op time is wall time on the
thread that ran the op (a multi-threaded GEMM counts once), so the two sides' numbers compare directly.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import re
import tempfile
from pathlib import Path

from bench import common
from vla_jax import hugepages

# XLA:CPU thunk kinds (the event name without its numeric suffix) that are GEMMs / convolutions.
XLA_MATMUL = re.compile(r"^(ynn_fusion|xnn_fusion|onednn|dot|convolution|.*_dot_fusion|.*convolution_fusion)")
# aten ops (self time) that are GEMMs, convolutions or fused attention.
TORCH_MATMUL = {
    "aten::mm",
    "aten::addmm",
    "aten::bmm",
    "aten::baddbmm",
    "aten::mkldnn_convolution",
    "aten::convolution_backward",
    "aten::mkldnn_rnn_layer",
    "aten::mkldnn_rnn_layer_backward",
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::_scaled_dot_product_flash_attention_for_cpu_backward",
}
# Events on XLA's threads that are runtime bookkeeping, not ops.
XLA_NOT_OPS = ("ThunkExecutor", "ThreadpoolListener", "end: ", "$")


def xla_kind(name: str) -> str:
    return re.sub(r"(\.\d+)+$", "", name)


def xla_op_times(trace_dir: str) -> dict[str, float]:
    """Sum of thunk event durations (us) by kind, from the trace `jax.profiler.trace` wrote under trace_dir."""
    files = sorted(Path(trace_dir).rglob("*.trace.json.gz"))
    if not files:
        raise RuntimeError(f"{trace_dir}: jax.profiler wrote no *.trace.json.gz (is XLA's traceme enabled?)")
    data = json.loads(gzip.decompress(files[-1].read_bytes()))
    events = data["traceEvents"] if isinstance(data, dict) else data
    xla_threads = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"]["name"].startswith("tf_XLA")
    }
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and (e.get("pid"), e.get("tid")) in xla_threads and not e["name"].startswith(XLA_NOT_OPS):
            by_thread[(e["pid"], e["tid"])].append(e)
    # Self time: a `while` (a scanned layer stack) or `call` thunk's event encloses its body's thunks.
    times: dict[str, float] = collections.defaultdict(float)
    for thread_events in by_thread.values():
        thread_events.sort(key=lambda e: (float(e["ts"]), -float(e.get("dur", 0.0))))
        stack: list[list] = []  # [end, kind, self time]
        for e in thread_events:
            start, dur = float(e["ts"]), float(e.get("dur", 0.0))
            while stack and stack[-1][0] <= start:
                _, kind, own = stack.pop()
                times[kind] += own
            if stack:
                stack[-1][2] -= dur
            stack.append([start + dur, xla_kind(e["name"]), dur])
        for _, kind, own in stack:
            times[kind] += own
    if not times:  # a zero split would read as "ours spends no time in matmuls"
        raise RuntimeError(
            f"{files[-1]}: no XLA:CPU thunk events; set XLA_FLAGS=--xla_cpu_enable_xprof_traceme=true before JAX starts"
        )
    return dict(times)


def split(times: dict[str, float], is_matmul, steps: int) -> dict:
    """ms per step: matmuls, the rest, and the rest's five largest kinds."""
    matmul = sum(v for k, v in times.items() if is_matmul(k)) / steps / 1e3
    rest = {k: v / steps / 1e3 for k, v in times.items() if not is_matmul(k)}
    top = dict(sorted(rest.items(), key=lambda kv: -kv[1])[:5])
    total = matmul + sum(rest.values())
    return {
        "matmul_ms": matmul,
        "rest_ms": sum(rest.values()),
        "op_ms": total,
        "matmul_share": matmul / total if total else 0.0,
        "rest_top_ms": top,
    }


def run(args) -> dict:
    import jax
    import torch

    from bench import torch_reference as ref
    from bench import train_step_vs_torch as tvt

    steps = args.steps or (2 if args.quick else 4)
    config, vcfg, _ = tvt.benchmark_model(args.quick, scan_layers=args.layers == "scan")
    model, params = ref.build_matched(vcfg, seed=0)
    ours = common.JaxTrainStep(config, params)
    batch_np = common.random_batch(config, seed=1)
    batch = ours.place(batch_np)
    ours.compile_seconds(batch)
    tb, _, torch_step = tvt.torch_side(model, config, batch_np)
    threads = args.torch_threads or (os.cpu_count() or 1)
    torch.set_num_threads(threads)

    # Warm-up, then the unprofiled wall time per step (interleaved, as bench.train_step_vs_torch times).
    jax.block_until_ready(ours(batch)["loss"])
    torch_step(*tb)
    wall = {"ours": [], "torch": []}
    for _ in range(steps):
        wall["ours"] += common.time_calls(lambda: ours(batch)["loss"], warmup=0, iters=1, sync=common.jax_sync)
        wall["torch"] += common.time_calls(lambda: torch_step(*tb), warmup=0, iters=1)

    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir):
            for _ in range(steps):
                jax.block_until_ready(ours(batch)["loss"])
        ours_times = xla_op_times(trace_dir)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            torch_step(*tb)
    torch_times = {e.key: float(e.self_cpu_time_total) for e in prof.key_averages()}

    result = {
        "benchmark": "train_step_profile",
        "quick": bool(args.quick),
        "machine": common.machine_info({"torch_threads": threads}),
        "config": {"ours_layers": "config" if args.quick else args.layers, "profiled_steps": steps},
        "wall_ms": {k: common.summary(v)["median_s"] * 1e3 for k, v in wall.items()},
        "ours": split(ours_times, lambda k: bool(XLA_MATMUL.match(k)), steps),
        "torch": split(torch_times, lambda k: k in TORCH_MATMUL, steps),
    }
    o, t = result["ours"], result["torch"]
    result["ratio_torch_over_ours"] = {
        "matmul": t["matmul_ms"] / o["matmul_ms"] if o["matmul_ms"] else None,
        "rest": t["rest_ms"] / o["rest_ms"] if o["rest_ms"] else None,
        "wall": result["wall_ms"]["torch"] / result["wall_ms"]["ours"],
    }
    common.print_table(
        f"train step profile, ms per step (CPU, load {result['machine']['load_average_1_5_15']}, torch {threads}t)",
        ["side", "wall", "op time", "matmuls", "rest", "matmul share"],
        [
            [side, result["wall_ms"][side], r["op_ms"], r["matmul_ms"], r["rest_ms"], r["matmul_share"]]
            for side, r in (("ours", o), ("torch", t))
        ],
    )
    ratio = result["ratio_torch_over_ours"]
    print(f"torch / ours: matmuls {ratio['matmul']:.3g}x, rest {ratio['rest']:.3g}x, wall {ratio['wall']:.3g}x")
    for side, r in (("ours", o), ("torch", t)):
        print(f"{side} rest, largest: " + ", ".join(f"{k} {v:.1f} ms" for k, v in r["rest_top_ms"].items()))
    return result


def main(argv=None) -> int:
    if argv is None:  # run as a program: huge-page malloc, as `vla-jax` runs (vla_jax/hugepages.py); both sides get it
        hugepages.reexec_with_hugepage_malloc()
    # Before jax starts its backend: XLA:CPU emits one trace event per thunk only with this flag.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_enable_xprof_traceme" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_enable_xprof_traceme=true").strip()
    p = common.parser("train_step_profile", str(__doc__).splitlines()[0])
    p.add_argument("--steps", type=int, default=0, help="profiled (and timed) steps per side (default 4; quick 2)")
    p.add_argument("--layers", choices=["scan", "unrolled"], default="unrolled", help="our layer stacks")
    p.add_argument("--torch-threads", type=int, default=0, help="torch intra-op threads (default: every core)")
    args = p.parse_args(argv)
    common.write_result(args.out, run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
