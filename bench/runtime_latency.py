"""Robot runtime: per-step latency of `vla_runtime.Policy.step` (incremental vs full window re-run) vs our
JAX inference, and export sizes at float32 / bf16 / int8 for the small and the full-size policy.

    python -m bench.runtime_latency            # configs/demo.py's model at windows 4 and 8 (about a minute)
    python -m bench.runtime_latency --quick    # configs/tiny.py's model (smoke test)

Per window size: random weights -> `vla_jax.export.export_policy` (float32) -> `Policy.load` twice
(``incremental=True`` / ``False``); an episode is stepped until the window is full, then the next
steps are timed (steady state: the window slides every step). Frames are given at the model's
input size, so resizing is not part of the number. Reference points, all batch 1, CPU, float32:

* ``backbone_one_frame``: the runtime's vision tower + projection + text decoder on ONE frame (the
  floor of any per-step cost); goal: incremental step <= 1.5x this;
* ``jax_full_window``: our jitted `VLAPolicy.apply` on the whole window (what a JAX-side server
  without a cache would run each step).

Torch runs single-threaded by default (--torch-threads): at batch 1 a small model's ops are too
small to split, and on a shared host OpenMP's barriers cost far more than they save.

Export sizes: the small model's files are written at every dtype and measured; the full-size
policy (Kosmos-2 1.6 B + LSTM 4x1024) is computed from its config on torch's meta device by
`vla_runtime.sizes.model_sizes` (the same rules `bundle.write_export` applies; the small model's
measured files check that prediction).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from bench import common

STATS = {
    "bench": {
        "action": {
            "mean": [0.0, 0.0],
            "std": [1.0, 1.0],
            "min": [-1.15, -1.15],
            "max": [1.15, 1.15],
            "q01": [-1.15, -1.15],
            "q99": [1.15, 1.15],
            "mask": [True, True],
        },
        "normalization": "bounds",
    }
}


def small_vla(quick: bool, window: int):
    if quick:
        return common.vla_config_of(common.quick_train_config())
    config = common.load_config_file(str(common.repo_root() / "configs/demo.py"), "unused")
    return common.vla_config_of(config).replace(window_size=window)


def export_small(vcfg, params, out: str, dtype: str) -> int:
    from vla_jax.export.export import export_policy

    export_policy(vcfg, params, STATS, None, out, dtype=dtype, instruction_length=8)
    return os.path.getsize(os.path.join(out, "model.safetensors"))


def latency_for(vcfg, steps: int, tmp: str) -> dict:
    import jax
    import torch

    from vla_jax.vla import VLAPolicy, init_policy
    from vla_runtime import Policy

    params = jax.device_get(init_policy(vcfg, 0, instruction_length=8))
    out = os.path.join(tmp, f"export_w{vcfg.window_size}")
    export_small(vcfg, params, out, "float32")
    size = vcfg.backbone.vision.image_size
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (vcfg.window_size + steps + 2, size, size, 3), dtype=np.uint8)
    instruction = "go left"
    res = {}
    for name, incremental in (("runtime_incremental", True), ("runtime_full_window", False)):
        policy = Policy.load(out, incremental=incremental)
        policy.reset(instruction)
        for f in frames[: vcfg.window_size + 1]:  # fill the window (+1: the sliding regime)
            policy.step(f)
        it = iter(frames[vcfg.window_size + 1 :])
        res[name] = common.summary(common.time_calls(lambda p=policy, i=it: p.step(next(i)), warmup=1, iters=steps))
    # One frame's backbone pass in the runtime (vision + projection + decoder), no head.
    model = policy.model
    pixels = torch.from_numpy(frames[:1]).permute(0, 3, 1, 2).float() / 255.0
    tokens, mask = policy._tokens, policy._token_mask

    @torch.no_grad()
    def backbone_once():
        return model._frame_features(model._encode(pixels), tokens, mask)

    res["backbone_one_frame"] = common.summary(common.time_calls(backbone_once, warmup=2, iters=steps))
    # Our JAX inference over the window, jitted.
    module = VLAPolicy(vcfg)
    apply = jax.jit(lambda p, b: module.apply({"params": p}, b)["action"])
    batch = {
        "image": frames[None, : vcfg.window_size],
        "image_mask": np.ones((1, vcfg.window_size), bool),
        "tokens": tokens.numpy().astype(np.int32),
        "token_mask": mask.numpy().astype(bool),
    }
    res["jax_full_window"] = common.summary(
        common.time_calls(lambda: apply(params, batch), warmup=2, iters=steps, sync=common.jax_sync)
    )
    med = {k: v["median_s"] for k, v in res.items()}
    return {
        "window": vcfg.window_size,
        "latency": res,
        "incremental_over_backbone": med["runtime_incremental"] / med["backbone_one_frame"],
        "full_over_incremental": med["runtime_full_window"] / med["runtime_incremental"],
        "jax_full_over_incremental": med["jax_full_window"] / med["runtime_incremental"],
        "goal_met": med["runtime_incremental"] <= 1.5 * med["backbone_one_frame"],
    }


def export_sizes(vcfg, tmp: str) -> dict:
    import jax

    from vla_jax.export.export import runtime_policy_config
    from vla_jax.vla import init_policy
    from vla_runtime.sizes import FULL_KOSMOS2, FULL_POLICY, model_sizes

    params = jax.device_get(init_policy(vcfg, 0, instruction_length=8))
    predicted = model_sizes(vcfg.backbone.to_hf_dict(), runtime_policy_config(vcfg))
    small = {"parameters": predicted["parameters"], "dtypes": {}}
    for dtype in ("float32", "bfloat16", "int8"):
        measured = export_small(vcfg, params, os.path.join(tmp, f"size_{dtype}"), dtype)
        small["dtypes"][dtype] = {"file_bytes": measured, "predicted_bytes": predicted["dtypes"][dtype]["file_bytes"]}
    full = model_sizes(FULL_KOSMOS2, FULL_POLICY)
    return {
        "small": small,
        "full": {
            "parameters": full["parameters"],
            "config": "Kosmos-2 patch14-224 + policy_head/lstm 4x1024, window 16, chunk 10, 7-D",
            "dtypes": {d: {"file_bytes": full["dtypes"][d]["file_bytes"]} for d in ("float32", "bfloat16", "int8")},
        },
    }


def run(args) -> dict:
    import torch

    torch.set_num_threads(args.torch_threads)
    steps = args.steps or (5 if args.quick else 30)
    windows = [None] if args.quick else args.windows
    with tempfile.TemporaryDirectory(prefix="bench_runtime_") as tmp:
        per_window = [latency_for(small_vla(args.quick, w), steps, tmp) for w in windows]
        sizes = export_sizes(small_vla(args.quick, windows[0]), tmp)
    rows = []
    for r in per_window:
        for k, v in r["latency"].items():
            rows.append(
                [
                    r["window"],
                    k,
                    v["median_s"] * 1e3,
                    v["p90_s"] * 1e3,
                    v["median_s"] / r["latency"]["backbone_one_frame"]["median_s"],
                ]
            )
    common.print_table(
        "per-step latency, batch 1, CPU float32",
        ["window", "path", "median ms", "p90 ms", "x one-frame backbone"],
        rows,
    )
    srows = [
        [name, d, v["file_bytes"], v["file_bytes"] / 2**20, v.get("predicted_bytes", "")]
        for name, s in sizes.items()
        for d, v in s["dtypes"].items()
    ]
    common.print_table("export size (model.safetensors)", ["model", "dtype", "bytes", "MiB", "predicted"], srows)
    return {
        "benchmark": "runtime_latency",
        "quick": bool(args.quick),
        "machine": common.machine_info({"torch_threads": torch.get_num_threads()}),
        "model": "configs/tiny.py" if args.quick else "configs/demo.py (window varied)",
        "windows": per_window,
        "export_sizes": sizes,
        "goal": "incremental per-step cost <= 1.5x one frame's backbone pass",
        "goal_met": all(r["goal_met"] for r in per_window),
    }


def main(argv=None) -> int:
    p = common.parser("runtime_latency", __doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=0, help="timed steps per path (default 30; quick 5)")
    p.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: batch-1 steps of a small model gain nothing from more, "
        "and on a busy host OpenMP barriers make them much slower)",
    )
    p.add_argument("--windows", type=int, nargs="+", default=[4, 8], help="window sizes to time (full run)")
    args = p.parse_args(argv)
    common.write_result(args.out, run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
