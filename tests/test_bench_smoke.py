"""Every benchmark in bench/ runs at --quick size and writes the JSON its RESULTS.md entry is built from.

One subprocess runs all five (imports paid once; JAX's persistent compilation cache in a temp dir
lets the runs that train configs/tiny.py's model share one compiled step; XLA's cheaper LLVM
settings because only the harness is under test here, not the speed). The assertions are about
the harness: fields present, numbers finite and positive, and the checks that can really fail -
the torch reference starts from our converted weights and must give the same first two losses,
the measured export files must match the size model, int8 < bf16 < float32.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vla_jax.train.step import fast_compile_xla_flags

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("train_step_vs_torch", "gpu_mfu", "input_pipeline", "runtime_latency", "compile_time")


def _pos(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


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
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=str(ROOT),
        JAX_COMPILATION_CACHE_DIR=str(out / "xla_cache"),
        XLA_FLAGS=fast_compile_xla_flags(),  # one device, as a user runs a benchmark
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
        assert _pos(r["step_time"][side]["median_s"]) and r["step_time"][side]["n"] >= 4
        assert _pos(r["frames_per_s"][side])
    assert _pos(r["speedup_vs_torch_eager"])
    assert r["params"]["ours_trainable"] == r["params"]["torch_trainable"] > 0
    # Same weights (HF torch -> our converter), same batch, same AdamW: the same two losses.
    assert r["sanity"]["rel_diff_step1"] < 1e-4, r["sanity"]
    assert r["sanity"]["rel_diff_step2"] < 1e-3, r["sanity"]
    assert r["sanity"]["loss_step2"]["ours"] != r["sanity"]["loss_step1"]["ours"]  # the update did something
    assert _pos(r["compile"]["ours_xla_s"])


def test_gpu_mfu(results):
    r = results["gpu_mfu"]
    assert _pos(r["flops"]["train_step_total"]) and _pos(r["flops"]["tokens_per_step"])
    assert r["flops"]["train_step_total"] == 3 * r["flops"]["forward_total"]
    for side in ("ours", "torch"):
        s = r["sides"][side]
        for key in ("median_s", "samples_per_s", "tokens_per_s", "model_tflops_per_s"):
            assert _pos(s[key]), (side, key, s)
    assert _pos(r["speedup_vs_torch"])


def test_input_pipeline(results):
    r = results["input_pipeline"]
    entry = r["configs"]["configs/tiny.py"]
    for key in ("rlds", "grain", "train_step"):
        assert _pos(entry[key]["frames_per_s"]), (key, entry[key])
    assert _pos(entry["convert_episodes_frames_per_s"])
    assert _pos(entry["ratio_rlds"]) and _pos(entry["ratio_grain"]) and _pos(r["min_ratio"])


def test_runtime_latency(results):
    r = results["runtime_latency"]
    w = r["windows"][0]
    for path in ("runtime_incremental", "runtime_full_window", "backbone_one_frame", "jax_full_window"):
        assert _pos(w["latency"][path]["median_s"]), path
    assert _pos(w["incremental_over_backbone"]) and _pos(w["full_over_incremental"])
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
        assert _pos(p["lower_s"]) and _pos(p["compile_s"]) and _pos(p["total_cpu_s"]) and _pos(p["params"])
    assert Path(r["plot"]).is_file() and Path(r["plot"]).stat().st_size > 1000
