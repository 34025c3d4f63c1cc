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

Per step it reports the op time of the matmuls and of everything else, next to the step's wall time outside the
profiler. Matmuls are, for ours, the `ynn_fusion` / `xnn_fusion` / `dot` / `convolution` thunks whose HLO holds a
dot or convolution, as the compiled step's text says (YNNPACK's reduction fusions are kind `ynn_fusion[no dot]`
and count as the rest); for torch, mm / addmm / bmm / baddbmm / convolution / the oneDNN LSTM layer / fused CPU
attention. Op time is wall time on the thread that ran the op (a multi-threaded GEMM counts once), so the two
sides' numbers compare directly.
XLA:CPU may run independent thunks at once, so ours' matmul op time can exceed the time its step spends in
matmuls; `matmul_busy_ms` is that time (the union of the matmul thunks' spans over its threads).

`gemms_alone`: the three (M, K, N) torch's step spends most matmul time in, each product timed alone on
XLA:CPU's jitted dot and on torch's mm, interleaved: the two GEMM libraries' speed at the step's shapes.
"""

from __future__ import annotations

import collections
import functools
import gzip
import json
import os
import re
import tempfile
from collections.abc import Collection
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


NO_DOT = "[no dot]"  # marks a library fusion (YNNPACK's) that holds no dot: a reduction or elementwise work


def xla_kind(name: str, no_dot: Collection[str] = ()) -> str:
    kind = re.sub(r"(\.\d+)+$", "", name)
    return kind + NO_DOT if name in no_dot else kind


def is_xla_matmul(kind: str) -> bool:
    return NO_DOT not in kind and bool(XLA_MATMUL.match(kind))


def library_fusions_without_dot(hlo_text: str) -> set[str]:
    """Names of the fusions XLA_MATMUL's kinds would count as matmuls whose computation holds no dot or
    convolution: XLA:CPU hands YNNPACK reductions (softmax's max and sum, layer norms' moments) as `ynn_fusion`s
    too, so the kind alone would count them as matmuls (74 of 714 ms per step, RESULTS section 1h)."""
    bodies = {
        m.group(1): m.group(2) for m in re.finditer(r"^%?([\w.\-]+) \([^\n]*\{\n(.*?)\n\}", hlo_text, re.M | re.S)
    }
    names = set()
    for m in re.finditer(r"^\s*(?:ROOT )?%?([\w.\-]+) = .*? fusion\(.*?calls=%?([\w.\-]+)", hlo_text, re.M):
        name, called = m.groups()
        body = bodies.get(called, "")
        if XLA_MATMUL.match(xla_kind(name)) and not re.search(r" (dot|convolution)\(", body):
            names.add(name)
    return names


def xla_thread_events(trace_dir: str) -> dict[tuple, list[dict]]:
    """The trace `jax.profiler.trace` wrote under trace_dir -> the op events of each XLA:CPU thread (read once;
    `xla_op_times` and `xla_matmul_busy_us` both take them)."""
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
    if not by_thread:  # a zero split would read as "ours spends no time in matmuls"
        raise RuntimeError(
            f"{files[-1]}: no XLA:CPU thunk events; set XLA_FLAGS=--xla_cpu_enable_xprof_traceme=true before JAX starts"
        )
    return by_thread


def xla_op_times(by_thread: dict[tuple, list[dict]], no_dot: Collection[str] = ()) -> dict[str, float]:
    """Self time (us) by kind of each thread's thunk events (`xla_thread_events`); the thunks named in `no_dot`
    (`library_fusions_without_dot`) get their own kind."""
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
            stack.append([start + dur, xla_kind(e["name"], no_dot), dur])
        for _, kind, own in stack:
            times[kind] += own
    return dict(times)


def xla_matmul_busy_us(by_thread: dict[tuple, list[dict]], no_dot: Collection[str] = ()) -> float:
    """Time (us) during which at least one matmul thunk runs, on any XLA thread. XLA:CPU may run independent
    thunks at once (q, k and v projections; a weight and an input gradient), each then on fewer cores, so
    the sum of matmul op times can exceed the time the step spends in matmuls; this union cannot."""
    spans = sorted(
        (float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0.0)))
        for events in by_thread.values()
        for e in events
        if is_xla_matmul(xla_kind(e["name"], no_dot))
    )
    busy, end = 0.0, float("-inf")
    for start, stop in spans:
        if stop > end:
            busy += stop - max(start, end)
            end = stop
    return busy


def gemm_shapes(prof_events, top: int) -> list[tuple[int, int, int]]:
    """The `top` (M, K, N) torch's step spends most matmul time in, from `key_averages(group_by_input_shape=True)`
    of a `record_shapes` profile: aten::mm [[M, K], [K, N]] and aten::addmm [[N], [M, K], [K, N], ...]."""
    time_by_shape: dict[tuple[int, int, int], float] = collections.defaultdict(float)
    for e in prof_events:
        shapes = [s for s in e.input_shapes if len(s) == 2]
        if e.key in ("aten::mm", "aten::addmm") and len(shapes) >= 2 and shapes[0][1] == shapes[1][0]:
            (m, k), (_, n) = shapes[0], shapes[1]
            time_by_shape[(m, k, n)] += float(e.self_cpu_time_total)
    return [s for s, _ in sorted(time_by_shape.items(), key=lambda kv: -kv[1])[:top]]


def gemms_alone(shapes: list[tuple[int, int, int]], rounds: int, calls: int = 10) -> list[dict]:
    """Each (M, K, N) float32 product alone, XLA:CPU's jitted dot vs torch's mm at its current thread count,
    interleaved per round: how fast each side's GEMM library is at the step's own shapes, outside the step."""
    import jax
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    out = []
    for m, k, n in shapes:
        a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
        aj, bj = jax.device_put(a), jax.device_put(b)
        dot = jax.jit(lambda x, y: x @ y).lower(aj, bj).compile()
        ours_s, torch_s = [], []
        ours_call = functools.partial(dot, aj, bj)
        torch_call = functools.partial(torch.mm, torch.from_numpy(a), torch.from_numpy(b))
        for _ in range(rounds):
            ours_s += common.time_calls(ours_call, warmup=1, iters=calls, sync=common.jax_sync)
            torch_s += common.time_calls(torch_call, warmup=1, iters=calls)
        flop = 2.0 * m * k * n
        ours_med, torch_med = (common.summary(s)["median_s"] for s in (ours_s, torch_s))
        out.append(
            {
                "mkn": [m, k, n],
                "ours_gflops": flop / ours_med / 1e9,
                "torch_gflops": flop / torch_med / 1e9,
                "torch_over_ours_speed": ours_med / torch_med,
            }
        )
    return out


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
        no_dot = library_fusions_without_dot(ours.step_fn.as_text())
        events = xla_thread_events(trace_dir)
        ours_times = xla_op_times(events, no_dot)
        ours_busy_us = xla_matmul_busy_us(events, no_dot)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            torch_step(*tb)
    torch_times = {e.key: float(e.self_cpu_time_total) for e in prof.key_averages()}
    # One more step with shapes recorded (apart, so the op times above carry no shape-recording overhead): the
    # GEMMs torch's step spends most in, each timed alone on both libraries.
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as shaped:
        torch_step(*tb)
    shapes = gemm_shapes(shaped.key_averages(group_by_input_shape=True), top=3)
    gemms = gemms_alone(shapes, rounds=3 if args.quick else 5)

    result = {
        "benchmark": "train_step_profile",
        "quick": bool(args.quick),
        "machine": common.machine_info({"torch_threads": threads}),
        "config": {"ours_layers": "config" if args.quick else args.layers, "profiled_steps": steps},
        "wall_ms": {k: common.summary(v)["median_s"] * 1e3 for k, v in wall.items()},
        "ours": split(ours_times, is_xla_matmul, steps),
        "torch": split(torch_times, lambda k: k in TORCH_MATMUL, steps),
        "gemms_alone": gemms,
    }
    o, t = result["ours"], result["torch"]
    o["matmul_busy_ms"] = ours_busy_us / steps / 1e3
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
    print(
        f"ours: some matmul thunk running {o['matmul_busy_ms']:.1f} ms per step "
        f"(matmul op time {o['matmul_ms']:.1f} ms: XLA runs independent thunks at once)"
    )
    common.print_table(
        f"the step's largest GEMMs alone (float32, torch {threads}t; XLA's dot on its default threads)",
        ["M x K x N", "ours GFLOP/s", "torch GFLOP/s", "torch faster by"],
        [
            [" x ".join(map(str, g["mkn"])), g["ours_gflops"], g["torch_gflops"], g["torch_over_ours_speed"]]
            for g in gemms
        ],
    )
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
