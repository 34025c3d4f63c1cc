"""`vla-runtime bench EXPORT_DIR`: per-step latency of `Policy.step`, incremental vs full re-run of the window.

Run it on the robot: it is the number that decides the control rate. Frames are
random camera-sized images; the steady-state numbers are medians over `--steps`
steps after the window is full (a long episode); `incremental_ms_first_window`
is the median over steps 2..T of an episode, where the interleaved structure
can extend its KV cache (once the window slides every block's position
shifts, so its decoder re-runs the window; the vision tower still runs on
the new frame only). With `--compile MODE` the incremental policy is
`Policy.load(compile=MODE)`: `load_s` then holds the compilation, and its
one-frame floor runs through the same compiled modules.
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np
import torch

from .policy import Policy


def _time_steps(policy, frames) -> list:
    policy.reset("Navigate around the obstacle on the left side and reach the target")
    times = []
    for frame in frames:
        t0 = time.perf_counter()
        policy.step(frame)
        if policy.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def benchmark(
    export_dir: str, steps: int = 20, device: str = "cpu", dtype=None, camera=(480, 640), compile: str | None = None
) -> dict:
    t0 = time.perf_counter()
    inc = Policy.load(export_dir, device=device, dtype=dtype, incremental=True, compile=compile)
    load_s = time.perf_counter() - t0  # with `compile`, the compilation of every shape the episode makes
    full = Policy.load(export_dir, device=device, dtype=dtype, incremental=False)
    warmup = inc.window + 1
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (*camera, 3), dtype=np.uint8) for _ in range(warmup + steps)]
    all_inc = _time_steps(inc, frames)
    all_full = _time_steps(full, frames)
    # Steady state = the window has slid (a long episode); "growing" = steps 2..T of an episode.
    t_inc, t_full = all_inc[warmup:], all_full[warmup:]
    growing = all_inc[1 : inc.window] or all_inc[:1]
    # One frame through the backbone (vision tower + projection + one block through the decoder).
    model = inc.model
    with torch.no_grad():
        size = inc.preprocessing.image_size
        pixels = torch.randn(1, 3, *size, device=inc.device, dtype=model.compute_dtype)
        ids, mask = inc.tokenizer("go left")
        tok, tmask = torch.from_numpy(ids)[None].to(inc.device), torch.from_numpy(mask)[None].to(inc.device)
        frame_times = []
        for _ in range(max(5, steps // 2)):
            t0 = time.perf_counter()
            lat = model._encode(pixels)
            if model.structure != "one_step_discrete":
                model._frame_features(lat, tok, tmask)
            frame_times.append(time.perf_counter() - t0)
    med = statistics.median
    return {
        "export": export_dir,
        "device": str(inc.device),
        "dtype": str(model.compute_dtype).replace("torch.", ""),
        "structure": model.structure,
        "head": inc.config["policy"]["head"],
        "window": inc.window,
        "threads": torch.get_num_threads(),
        "steps": steps,
        "compile": compile,
        "load_s": load_s,
        "incremental_ms": med(t_inc) * 1e3,
        "full_rerun_ms": med(t_full) * 1e3,
        "incremental_ms_first_window": med(growing) * 1e3,
        "one_frame_backbone_ms": med(frame_times) * 1e3,
        "speedup": med(t_full) / med(t_inc),
        "incremental_over_one_frame": med(t_inc) / med(frame_times),
    }


def main(args) -> int:
    print(json.dumps(benchmark(args.export_dir, args.steps, args.device, args.dtype, compile=args.compile)))
    return 0
