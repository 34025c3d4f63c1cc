"""The benchmarks that run as their own process at --quick size (`python -m bench.NAME --quick`), so that none
rots: each one's JSON is read and the numbers that can be wrong are checked, not only present.

They are not in test_bench_smoke.py's shared subprocess: the data pipelines start grain workers (which need a
`__main__` module to import), Meta-World needs MuJoCo's headless renderer, and in their own file xdist can run
them beside the shared one. `bench.backbone_latency --compile` is here for the same reason: torch.compile's
compilation takes seconds. `bench.runtime_before_after` is not run: it compares with the hand-written torch Kosmos-2 of
commit c2c1003 (`--before` is required) and is kept as the record of that change.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from bench_helpers import ROOT, bench_env, pos


def run_quick(name: str, tmp_path, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--quick", "--out", str(out), *args],
        cwd=ROOT,
        env=bench_env(MUJOCO_GL="egl"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["machine"]["cpu_model"] and len(result["machine"]["load_average_1_5_15"]) == 3
    return result


def test_runtime_step(tmp_path):
    r = run_quick("runtime_step", tmp_path)
    assert r["benchmark"] == "runtime_step" and r["quick"] is True
    assert {x["structure"] for x in r["results"]} == {
        "policy_head",
        "interleaved",
        "one_step_continuous",
        "one_step_discrete",
    }
    for x in r["results"]:
        assert x["max_abs_diff"] == 0.0, x  # this runtime against itself: the same actions on every step
        assert all(pos(v) for v in x["median_ms"].values()) and pos(x["after_over_backbone"]), x


def test_backbone_sizes(tmp_path):
    r = run_quick("backbone_sizes", tmp_path)["results"]
    kosmos = r["Kosmos-2 (microsoft/kosmos-2-patch14-224)"]
    assert 1.6e9 < kosmos["parameters"] < 1.7e9  # the released model's 1.66 B
    assert 2.9e9 < r["PaliGemma 2 3B (google/paligemma2-3b-pt-224)"]["parameters"] < 3.1e9
    for name, x in r.items():
        assert x["bfloat16"] * 2 == pytest.approx(x["float32"]), name
        assert x["adam_full_finetune"] > x["float32"], name


def test_data_pipelines(tmp_path):
    r = run_quick("data_pipelines", tmp_path)["results"]
    assert len(r) >= 2
    for name, x in r.items():
        assert pos(x["frames_per_s"]) and x["batches"] > 0, name


def test_metaworld(tmp_path):
    r = run_quick("metaworld", tmp_path)
    assert pos(r["render_64px"]["fast_renderer"]["median_s"])
    assert pos(r["render_64px"]["metaworld_env_render"]["median_s"])
    tasks = r["expert"]["per_task"]
    assert set(tasks) == {"reach-v3", "pick-place-v3"}
    assert tasks["reach-v3"]["success"] == 1.0  # the scripted expert on the collection seeds
    assert all(0.0 <= t["success"] <= 1.0 for t in tasks.values())
    conv = r["lerobot_conversion"]
    assert conv["frames"] > 0 and pos(conv["frames_per_s"])


def test_backbones_verify(tmp_path):
    r = run_quick("backbones_verify", tmp_path)["results"]
    assert len(r) >= 4
    for name, x in r.items():
        assert x["ok"] is True and x["exit_code"] == 0, (name, x)
        for stage in ("vision_tower", "projector", "lm_last_hidden"):
            if x.get(stage) is not None:
                assert 0 <= x[stage] <= x["tol"], (name, stage, x)


def test_backbone_latency_through_torch_compile(tmp_path):
    """--compile steps a compiled policy against an eager copy's floor; the load pays the compilation, not the first
    step."""
    args = ("--families", "kosmos-2", "--structures", "policy_head", "--compile", "default")
    r = run_quick("backbone_latency", tmp_path, *args)
    assert r["compile"] == "default" and [x["structure"] for x in r["results"]] == ["policy_head"]
    row = r["results"][0]
    assert pos(row["incremental_ms"]) and pos(row["one_frame_backbone_ms"]) and pos(row["paired_ratio"])
    assert row["compile_s"] > 1.0, row  # inductor's code generation and C++ build: seconds, not milliseconds
    assert row["first_step_s"] < 1.0, row  # nothing left to compile
