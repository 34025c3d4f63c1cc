"""Every benchmark in bench/ runs at --quick size and writes the JSON its RESULTS.md entry is built from.

One subprocess runs all of them (imports paid once; JAX's persistent compilation cache in a temp dir
lets the runs that train configs/tiny.py's model share one compiled step; XLA's cheaper LLVM
settings because only the harness is under test here, not the speed). The assertions are about
the harness: fields present, numbers finite and positive, and the checks that can really fail -
the torch reference starts from our converted weights and must give the same first two losses,
the measured export files must match the size model, int8 < bf16 < float32.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bench_helpers import ROOT, bench_env, pos

from vla_jax.train.step import fast_compile_xla_flags

BENCHMARKS = (
    "train_step_vs_torch",
    "train_step_profile",
    "gpu_mfu",
    "input_pipeline",
    "runtime_latency",
    "compile_time",
    "server_load",
    "scaling",
    "gpu_all",
    "backbone_latency",
    "frame_resize",
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = (
        "import sys\n"
        "from bench import " + ", ".join(BENCHMARKS) + "\n"
        "for name in sys.argv[2:]:\n"
        "    rc = globals()[name].main(['--quick', '--out', f'{sys.argv[1]}/{name}.json'])\n"
        "    assert rc == 0, name\n"
    )
    env = bench_env(
        JAX_COMPILATION_CACHE_DIR=str(out / "xla_cache"),
        # One device, as a user runs a benchmark; XLA:CPU's per-thunk trace events for bench.train_step_profile
        # (its main() sets the flag itself, but only before JAX starts, and here an earlier benchmark starts it).
        XLA_FLAGS=fast_compile_xla_flags() + " --xla_cpu_enable_xprof_traceme=true",
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(out), *BENCHMARKS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return {name: json.loads((out / f"{name}.json").read_text()) for name in BENCHMARKS}


def test_every_result_names_its_machine(results):
    for name, r in results.items():
        assert r["benchmark"] == name and r["quick"] is True
        m = r["machine"]
        assert m["cpu_model"] and m["date_utc"] and len(m["load_average_1_5_15"]) == 3


def test_train_step_vs_torch(results):
    r = results["train_step_vs_torch"]
    for side in ("ours_jax", "torch_eager"):
        assert pos(r["step_time"][side]["median_s"]) and r["step_time"][side]["n"] >= 4
        assert pos(r["frames_per_s"][side])
    assert pos(r["speedup_vs_torch_eager"])
    assert r["params"]["ours_trainable"] == r["params"]["torch_trainable"] > 0
    # Same weights (HF torch -> our converter), same batch, same AdamW: the same two losses.
    assert r["sanity"]["rel_diff_step1"] < 1e-4, r["sanity"]
    assert r["sanity"]["rel_diff_step2"] < 1e-3, r["sanity"]
    assert r["sanity"]["loss_step2"]["ours"] != r["sanity"]["loss_step1"]["ours"]  # the update did something
    assert pos(r["compile"]["ours_xla_s"])


def test_train_step_profile(results):
    r = results["train_step_profile"]
    for side in ("ours", "torch"):
        split = r[side]
        # Both profiles parsed into real op times: matmuls and the rest each nonzero, shares consistent.
        assert pos(r["wall_ms"][side]) and pos(split["matmul_ms"]) and pos(split["rest_ms"]), (
            side,
            split,
        )
        assert 0 < split["matmul_share"] < 1
        assert math.isclose(split["op_ms"], split["matmul_ms"] + split["rest_ms"], rel_tol=1e-9)
    assert pos(r["ratio_torch_over_ours"]["matmul"]) and pos(r["ratio_torch_over_ours"]["wall"])
    # The union of matmul spans: positive, never more than their summed op time (plus float rounding).
    assert 0 < r["ours"]["matmul_busy_ms"] <= r["ours"]["matmul_ms"] * (1 + 1e-9)
    assert r["gemms_alone"], r  # torch's step has matmuls, so the shapes were found and timed
    for g in r["gemms_alone"]:
        assert len(g["mkn"]) == 3 and pos(g["ours_gflops"]) and pos(g["torch_gflops"]), g


def test_train_step_profile_counts_self_time(tmp_path):
    """A scanned stack's `while` thunk encloses its body's thunks: each event counts only its own time."""
    import gzip

    from bench.train_step_profile import xla_op_times, xla_thread_events

    meta = [
        {"ph": "M", "pid": 1, "tid": 7, "name": "thread_name", "args": {"name": "tf_XLAPjRtCpuClient/1"}},
        {"ph": "M", "pid": 1, "tid": 8, "name": "thread_name", "args": {"name": "python"}},
    ]
    ops = [
        ("while.3", 0, 100),
        ("ynn_fusion.12", 10, 30),
        ("add_fusion.1", 50, 20),
        ("dot.4", 75, 5),
        ("ThunkExecutor::Execute", 0, 100),  # runtime bookkeeping, not an op
        ("copy.2", 200, 10),
    ]
    events = meta + [{"ph": "X", "pid": 1, "tid": 7, "name": n, "ts": ts, "dur": d} for n, ts, d in ops]
    events.append({"ph": "X", "pid": 1, "tid": 8, "name": "dot.9", "ts": 0, "dur": 1000})  # not an XLA thread
    trace = tmp_path / "plugins/profile/run/host.trace.json.gz"
    trace.parent.mkdir(parents=True)
    trace.write_bytes(gzip.compress(json.dumps({"traceEvents": events}).encode()))
    assert xla_op_times(xla_thread_events(str(tmp_path))) == {
        "while": 45.0,
        "ynn_fusion": 30.0,
        "add_fusion": 20.0,
        "dot": 5.0,
        "copy": 10.0,
    }
    # Without XLA's traceme flag only the Python thread has events: one clear error, not an all-zero profile.
    trace.write_bytes(gzip.compress(json.dumps({"traceEvents": meta + events[-1:]}).encode()))
    with pytest.raises(RuntimeError, match="no XLA:CPU thunk events; set XLA_FLAGS"):
        xla_thread_events(str(tmp_path))


def test_train_step_profile_matmul_busy_and_gemm_shapes(tmp_path):
    """Overlapping matmul thunks on two threads count once; torch's mm / addmm shapes parse into (M, K, N)."""
    import gzip
    import types

    from bench.train_step_profile import gemm_shapes, xla_matmul_busy_us, xla_thread_events

    meta = [
        {"ph": "M", "pid": 1, "tid": t, "name": "thread_name", "args": {"name": f"tf_XLAEigen/{t}"}} for t in (7, 8)
    ]
    ops = [
        (7, "ynn_fusion.1", 0, 30),  # overlaps the next one on the other thread: 0..40 busy, not 30 + 20
        (8, "ynn_fusion.2", 20, 20),
        (7, "add_fusion.3", 40, 50),  # not a matmul
        (8, "dot.4", 100, 10),
        (7, "convolution.5", 105, 10),  # overlaps dot.4: 100..115
    ]
    events = meta + [{"ph": "X", "pid": 1, "tid": t, "name": n, "ts": ts, "dur": d} for t, n, ts, d in ops]
    trace = tmp_path / "plugins/profile/run/host.trace.json.gz"
    trace.parent.mkdir(parents=True)
    trace.write_bytes(gzip.compress(json.dumps({"traceEvents": events}).encode()))
    assert xla_matmul_busy_us(xla_thread_events(str(tmp_path))) == 55.0

    def ev(key, shapes, us):
        return types.SimpleNamespace(key=key, input_shapes=shapes, self_cpu_time_total=us)

    prof = [
        ev("aten::mm", [[1296, 512], [512, 512]], 10.0),
        ev("aten::addmm", [[512], [1296, 512], [512, 512], [], []], 15.0),  # same GEMM: 25 us in all
        ev("aten::mm", [[1296, 512], [512, 2048]], 20.0),
        ev("aten::bmm", [[8, 81, 64], [8, 64, 81]], 99.0),  # batched: not a plain GEMM
        ev("aten::add_", [[512, 512], [512, 512]], 50.0),
    ]
    assert gemm_shapes(prof, top=2) == [(1296, 512, 512), (1296, 512, 2048)]
    assert gemm_shapes(prof, top=1) == [(1296, 512, 512)]


def test_train_step_profile_tells_ynnpack_reductions_from_matmuls():
    """XLA:CPU hands YNNPACK reductions as `ynn_fusion`s too: only a fusion whose computation holds a dot or a
    convolution is a matmul; the others get their own kind and count as the rest."""
    from bench.train_step_profile import is_xla_matmul, library_fusions_without_dot, xla_kind

    hlo = """HloModule step
%fused_computation.1 (param_0: f32[8,4], param_1: f32[4,2]) -> f32[8,2] {
  %param_0 = f32[8,4]{1,0} parameter(0)
  %param_1 = f32[4,2]{1,0} parameter(1)
  ROOT %dot.5 = f32[8,2]{1,0} dot(%param_0, %param_1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}
%fused_computation.2 (param_0.1: f32[8,4]) -> f32[8] {
  %param_0.1 = f32[8,4]{1,0} parameter(0)
  %constant.1 = f32[] constant(0)
  ROOT %reduce.3 = f32[8]{0} reduce(%param_0.1, %constant.1), dimensions={1}, to_apply=%add
}
%fused_computation.3 (param_0.2: f32[8,4]) -> f32[8,4] {
  %param_0.2 = f32[8,4]{1,0} parameter(0)
  ROOT %exponential.1 = f32[8,4]{1,0} exponential(%param_0.2)
}
ENTRY %main (a: f32[8,4], b: f32[4,2]) -> f32[8,2] {
  %ynn_fusion.7 = f32[8,2]{1,0} fusion(%a, %b), kind=kCustom, calls=%fused_computation.1
  %ynn_fusion.8 = f32[8]{0} fusion(%a), kind=kCustom, calls=%fused_computation.2
  %exponential_fusion = f32[8,4]{1,0} fusion(%a), kind=kLoop, calls=%fused_computation.3
}
"""
    no_dot = library_fusions_without_dot(hlo)
    assert no_dot == {"ynn_fusion.8"}  # the loop fusion is not a library fusion: never a candidate
    assert is_xla_matmul(xla_kind("ynn_fusion.7", no_dot)) and is_xla_matmul(xla_kind("dot.4", no_dot))
    assert xla_kind("ynn_fusion.8", no_dot) == "ynn_fusion[no dot]"
    assert not is_xla_matmul(xla_kind("ynn_fusion.8", no_dot))


def test_gpu_mfu(results):
    r = results["gpu_mfu"]
    assert pos(r["flops"]["train_step_total"]) and pos(r["flops"]["tokens_per_step"])
    assert r["flops"]["train_step_total"] == 3 * r["flops"]["forward_total"]
    for side in ("ours", "torch"):
        s = r["sides"][side]
        for key in ("median_s", "samples_per_s", "tokens_per_s", "model_tflops_per_s"):
            assert pos(s[key]), (side, key, s)
    assert pos(r["speedup_vs_torch"])


def test_input_pipeline(results):
    r = results["input_pipeline"]
    entry = r["configs"]["configs/tiny.py"]
    for key in ("rlds", "grain", "train_step"):
        assert pos(entry["frames_per_s"][key]["median"]), (key, entry["frames_per_s"])
    assert pos(entry["convert_episodes_frames_per_s"])
    assert pos(entry["ratio_rlds"]["median"]) and pos(entry["ratio_grain"]["median"]) and pos(r["min_ratio"])


def test_runtime_latency(results):
    r = results["runtime_latency"]
    w = r["windows"][0]
    for path in ("runtime_incremental", "runtime_full_window", "backbone_one_frame", "jax_full_window"):
        assert pos(w["latency"][path]["median_s"]), path
    assert pos(w["incremental_over_backbone"]) and pos(w["full_over_incremental"])
    small = r["export_sizes"]["small"]["dtypes"]
    for dtype, v in small.items():
        # safetensors adds only a JSON header to the predicted tensor bytes.
        assert 0 <= v["file_bytes"] - v["predicted_bytes"] < 64 * 1024, (dtype, v)
    full = r["export_sizes"]["full"]
    assert full["parameters"] > 1.5e9
    sizes = [full["dtypes"][d]["file_bytes"] for d in ("int8", "bfloat16", "float32")]
    assert sizes[0] < sizes[1] < sizes[2] == 4 * full["parameters"]


def test_compile_time(results):
    r = results["compile_time"]
    assert {p["scan"] for p in r["points"]} == {True, False}
    for p in r["points"]:
        assert pos(p["lower_s"]) and pos(p["compile_s"]) and pos(p["total_cpu_s"]) and pos(p["params"])
    assert Path(r["plot"]).is_file() and Path(r["plot"]).stat().st_size > 1000


def test_server_load(results):
    r = results["server_load"]
    many = r["many_clients"]
    assert many["round_trip"]["n"] == many["clients"] * many["requests_each"] and not many["errors"]
    assert pos(many["round_trip"]["p50_ms"]) and many["round_trip"]["p99_ms"] >= many["round_trip"]["p50_ms"]
    assert many["round_trip"]["p50_ms"] >= many["infer"]["p50_ms"] > 0
    for load in (many, r["pipelining"]):
        assert load["memory"]["peak_rss_mib"] >= load["memory"]["idle_rss_mib"] > 0
    hd, huge = r["pipelining"]["pipelined_hd"], r["pipelining"]["pipelined_huge"]
    # One request in flight per connection: the rest of a pipelined burst is refused, not queued.
    assert hd["replies"].get("action", 0) >= 1 and hd["replies"].get("busy", 0) >= 1
    assert set(huge["replies"]) <= {"too_large", "busy"} and sum(huge["replies"].values()) == huge["sent"]


def test_pod_sizing_follows_from_the_flop_count():
    """bench.pod_sizing (analytic, no compile): FLOPs/frame agree with 6 x matmul params x tokens per tower."""
    from bench import pod_sizing

    r = pod_sizing.sizing(host_frames_per_s=200.0)
    f = r["train_flops_per_frame"]
    # PaLM's 6 * N * tokens per tower (ViT-L/14: 257 tokens; decoder: 99 tokens/frame); attention, the
    # projection and the head come on top, so the analytic count is a little above this estimate.
    v_h, t_d = 1024, 2048
    vision = 24 * 12 * v_h**2 * 257
    text = 24 * (4 * t_d**2 + 2 * t_d * 8192) * r["tokens_per_frame"]
    assert 1.0 < f / (6 * (vision + text)) < 1.1, f
    for s in r["slices"].values():
        assert abs(s["host_frames_per_s_needed"] - s["chips_per_host"] * 0.4 * s["peak_tflops_bf16"] * 1e12 / f) < 1e-6
        assert abs(s["global_step_s"] * s["chip_frames_per_s"] * s["chips"] - r["frames_per_step"]) < 1e-6
        assert s["measured_over_needed"] == 200.0 / s["host_frames_per_s_needed"]


def test_scaling(results):
    r = results["scaling"]
    for axis in ("by_window", "by_batch", "by_backbone"):
        for p in r["train"][axis]:
            assert pos(p["step"]["median_s"]) and pos(p["peak_bytes"]) and pos(p["params"]), (axis, p)
            assert abs(p["ms_per_frame"] - 1e3 * p["step"]["median_s"] / (p["batch"] * p["window"])) < 1e-9
    assert r["runtime"] and all(pos(p["step"]["median_s"]) for p in r["runtime"])
    assert Path(r["plot"]).is_file() and Path(r["plot"]).stat().st_size > 1000
    table = r["flops"]["by_backbone_structure"]
    assert {t["backbone"] for t in table} == {"kosmos-2", "paligemma", "smolvlm", "clip-kosmos-2"}
    assert all(pos(t["tflop_per_frame"]) and 0 < t["decoder_attention_share"] < 1 for t in table)


def test_gpu_all(results):
    r = results["gpu_all"]
    rt = r["parts"]["runtime"]
    assert "error" not in rt, rt
    for dtype in ("bfloat16", "int8"):
        d = rt["dtypes"][dtype]
        for key in ("incremental_ms", "full_rerun_ms", "one_frame_backbone_ms", "load_s", "file_bytes"):
            assert pos(d[key]), (dtype, key, d)
    assert rt["dtypes"]["int8"]["file_bytes"] < rt["dtypes"]["bfloat16"]["file_bytes"]
    mfu = r["parts"]["mfu"]
    assert "error" not in mfu, mfu
    assert all(pos(mfu["sides"][side]["median_s"]) for side in ("ours", "torch"))
    compiled = r["parts"]["compiled"]
    assert "error" not in compiled, compiled
    c = compiled["dtypes"]["bfloat16"]
    assert c["compile"] == "reduce-overhead" and pos(c["incremental_ms"]) and "full_rerun_ms" not in c
    assert c["load_s"] > 1.0, c  # the load compiled the episode's shapes: seconds, not milliseconds


def test_flops_per_structure():
    """bench.flops (analytic): the four structures differ only where their sequences do."""
    from bench import flops
    from vla_jax.models.kosmos2 import Kosmos2Config
    from vla_jax.vla import VLAConfig

    def count(structure, head, window):
        cfg = VLAConfig(backbone=Kosmos2Config.full(), structure=structure, head=head, window_size=window)
        return flops.train_step_flops(cfg, 1, 16)

    # Interleaved over one frame is the per-frame sequence of one_step_continuous (same MLP head).
    one, cont = count("interleaved", "mlp", 1), count("one_step_continuous", "mlp", 1)
    assert one["train_step_total"] == cont["train_step_total"]
    # Its decoder attention is quadratic in the window (T blocks in one sequence); per-frame ones are linear.
    a4, a8 = (count("interleaved", "mlp", t)["decoder_attention_forward"] for t in (4, 8))
    assert a8 == 4 * a4
    p4, p8 = (count("policy_head", "lstm", t)["decoder_attention_forward"] for t in (4, 8))
    assert p8 == 2 * p4
    # The discrete tail: C*A extra tokens per frame, so more than the continuous structure.
    assert count("one_step_discrete", "discrete", 4)["forward"]["text_decoder"] > cont["forward"]["text_decoder"] * 4


def test_backbone_latency(results):
    r = results["backbone_latency"]
    assert r["width"] == "tiny" and {x["family"] for x in r["results"]} == {"kosmos-2", "qwen2_5_vl"}
    for x in r["results"]:
        for key in ("incremental_ms", "one_frame_backbone_ms", "full_rerun_ms", "incremental_over_one_frame", "hz"):
            assert pos(x[key]), (key, x)
        # interleaved is also timed against its own floor, the window's T blocks in one decoder call
        assert ("window_pass_ms" in x) == (x["structure"] == "interleaved"), x
        if x["structure"] == "interleaved":
            assert pos(x["window_pass_ms"]) and pos(x["paired_ratio_window"]), x
    assert {x["structure"] for x in r["results"]} == {
        "policy_head",
        "interleaved",
        "interleaved/streaming",
        "one_step_discrete/parallel",
    }
    # streaming runs on Qwen's rotary positions and is refused, named, on Kosmos-2's absolute ones
    assert [(x["family"], x["structure"]) for x in r["results"] if x["structure"] == "interleaved/streaming"] == [
        ("qwen2_5_vl", "interleaved/streaming")
    ]
    assert [(x["family"], x["structure"]) for x in r["skipped"]] == [("kosmos-2", "interleaved/streaming")]
    assert "absolute position embeddings" in r["skipped"][0]["why"]


def test_machine_info_names_the_cpu_generation():
    """A result says which CPU it ran on beyond lscpu's model name (the ratio differs by generation)."""
    from bench.common import cpu_identity

    lscpu = (
        "Model name:   AMD EPYC\nCPU family:   25\nModel:        1\nStepping:     1\nFlags:        fpu sse avx2 fma\n"
    )
    assert cpu_identity(lscpu) == {
        "cpu_model": "AMD EPYC",
        "cpu_family_model_stepping": ["25", "1", "1"],
        "cpu_vector_flags": ["avx2"],
    }
    empty = cpu_identity("")  # no lscpu: the name falls back to platform's, the rest stays unknown
    assert empty["cpu_family_model_stepping"] == [None, None, None] and empty["cpu_vector_flags"] == []


def test_backbone_latency_with_camera_frames(tmp_path):
    """--camera H W feeds frames of the camera's size: the step then pays the resize, recorded with the row."""
    out = tmp_path / "camera.json"
    args = ["--quick", "--families", "kosmos-2", "--structures", "policy_head", "--camera", "30", "40"]
    args += ["--out", str(out)]
    code = f"from bench import backbone_latency; raise SystemExit(backbone_latency.main({args!r}))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=bench_env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["camera"] == [30, 40] and [x["structure"] for x in r["results"]] == ["policy_head"]
    row = r["results"][0]
    assert row["frame_size"] == [30, 40] and row["frame_size"] != row["image_size"]
    assert pos(row["incremental_ms"]) and pos(row["one_frame_backbone_ms"])


def test_frame_resize(results):
    r = results["frame_resize"]
    assert r["before"] is None and r["mode"] == "resize" and r["rounds"] == 3
    assert [(x["camera"], x["target"]) for x in r["results"]] == [([48, 64], [16, 16]), ([30, 40], [16, 16])]
    assert all(pos(x["after_ms"]) and "before_ms" not in x and "bytes_equal" not in x for x in r["results"])


def test_frame_resize_against_another_revision_fails_when_bytes_move(tmp_path):
    """--before compares bytes: the same runtime passes, one whose resize sums its taps in another order fails
    the run (exit 1, the camera sizes named), so an optimisation that moves a byte cannot be reported as a gain."""
    moved = tmp_path / "moved"
    shutil.copytree(ROOT / "runtime" / "vla_runtime", moved / "vla_runtime")
    path = moved / "vla_runtime" / "policy_io.py"
    text = path.read_text()
    loop = "for n, (k, weight) in enumerate(taps):"
    assert text.count(loop) == 1
    path.write_text(text.replace(loop, "for n, (k, weight) in enumerate(taps[::-1]):"))
    for before, rc in ((ROOT / "runtime", 0), (moved, 1)):
        out = tmp_path / f"resize_{rc}.json"
        args = ["--cameras", "480x640", "37x100", "--target", "224", "224", "--rounds", "1", "--calls", "1"]
        args += ["--before", str(before), "--out", str(out)]
        code = f"from bench import frame_resize; raise SystemExit(frame_resize.main({args!r}))"
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=bench_env(), capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == rc, proc.stdout[-2000:] + proc.stderr[-3000:]
        rows = json.loads(out.read_text())["results"]
        assert all(pos(x["before_ms"]) and pos(x["after_ms"]) and pos(x["before_over_after"]) for x in rows)
        assert all(x["bytes_equal"] for x in rows) if rc == 0 else rows[0]["bytes_equal"] is False
    assert "differs from --before's on 480x640" in proc.stdout and "the change moved bytes" in proc.stdout


@pytest.mark.parametrize(
    "module, argv, message",
    [
        ("frame_resize", ["--cameras", "640"], "--cameras '640': give HEIGHTxWIDTH, each at least 2, e.g. 480x640"),
        ("frame_resize", ["--cameras", "1x5"], "--cameras '1x5': give HEIGHTxWIDTH, each at least 2"),
        ("frame_resize", ["--target", "0", "4"], "--target 0 4: the model's size is at least 1 x 1"),
        ("frame_resize", ["--calls", "0"], "--rounds must be >= 0 and --calls >= 1"),
        ("backbone_latency", ["--camera", "1", "640"], "--camera 1 640: a camera frame is at least 2 x 2 pixels"),
    ],
)
def test_bench_arguments_refused_in_one_line(module, argv, message, capsys, tmp_path):
    """Arguments the benchmark cannot run with stop it before any work, with one line naming the flag."""
    import importlib

    bench = importlib.import_module(f"bench.{module}")
    with pytest.raises(SystemExit) as exit_info:
        bench.main([*argv, "--out", str(tmp_path / "never.json")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "never.json").exists()
