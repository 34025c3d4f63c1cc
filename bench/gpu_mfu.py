"""Full-size Kosmos-2 policy head (LSTM) in bf16 on one GPU: samples/s, tokens/s and model-FLOPs utilisation,
ours (the trainer's jitted step, bf16 compute, float32 master weights) vs the PyTorch reference
(HF `Kosmos2Model` + nn.LSTM head under `torch.autocast(bfloat16)`, AdamW).

    python -m bench.gpu_mfu                      # on a GPU machine: about 5 minutes, both sides
    python -m bench.gpu_mfu --quick              # toy size on CPU (smoke test; MFU needs --peak-tflops)

MFU = model FLOPs per second / peak. FLOPs are counted analytically (`bench.flops`: 2*m*n*k per
matmul, x3 for forward+backward, attention score/value matmuls included, remat not counted).
Peak: bf16 dense tensor-core throughput, 989 TFLOP/s for H100 SXM and H200 (NVIDIA datasheets);
other devices need --peak-tflops. Random weights (the speed does not depend on their values).
Each side runs in its own subprocess on a GPU, so JAX's preallocated memory never starves torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from bench import common, flops

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "TPU v5": 197.0, "TPU v4": 275.0}


def vla_config(quick: bool, window: int):
    from vla_jax.models.kosmos2 import Kosmos2Config
    from vla_jax.vla import VLAConfig

    if quick:  # the shared toy config (float32 there, so the smoke test compiles one program for all)
        return common.vla_config_of(common.quick_train_config())
    backbone = Kosmos2Config.full(dtype="bfloat16", text={"dropout": 0.0})
    # RoboVLMs' best CALVIN model: LSTM 4x1024 head, chunk 10, 7-D arm + gripper.
    return VLAConfig(backbone=backbone, window_size=window, action_chunk=10, head_hidden_size=1024, head_layers=4)


def _train_config(vcfg, batch: int, instruction_length: int):
    import dataclasses

    model = vcfg.to_dict()
    model["backbone"] = dataclasses.asdict(vcfg.backbone)
    return common.train_config(model, batch_size=batch, instruction_length=instruction_length)


def device_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    import jax

    return str(jax.devices()[0].device_kind)


def peak_for(name: str, override: float | None) -> float | None:
    if override:
        return float(override)
    for key, value in PEAK_TFLOPS.items():
        if key.lower() in name.lower():
            return value
    return None


def run_side(side: str, args) -> dict:
    """Time one side in this process -> {"median_s", "compile_s", ...}."""
    vcfg = vla_config(args.quick, args.window)
    config = common.quick_train_config() if args.quick else _train_config(vcfg, args.batch, args.instruction_length)
    batch_np = common.random_batch(config, seed=0)
    if side == "ours":
        step = common.JaxTrainStep(config)
        batch = step.place(batch_np)
        compile_s = step.compile_seconds(batch)
        times = common.time_calls(
            lambda: step(batch)["loss"], warmup=args.warmup, iters=args.steps, sync=common.jax_sync
        )
        return {"compile_s": compile_s, **common.summary(times), "params": step.num_params}
    import torch

    from bench import torch_reference as ref

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(dev):
        model = ref.TorchPolicy(vcfg, attn_implementation="sdpa").train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=(dev == "cuda"))
    image = torch.from_numpy(batch_np["image"]).to(dev)
    tokens = torch.from_numpy(batch_np["tokens"]).long().to(dev)
    action = torch.from_numpy(batch_np["action"]).to(dev)

    def loss_fn(m, im, tok, act):
        with torch.autocast(device_type=dev, dtype=torch.bfloat16):
            return ref.policy_loss(m, im, tok, act)

    step = ref.make_step(model, opt, loss_fn=loss_fn)
    sync = (lambda x: torch.cuda.synchronize()) if dev == "cuda" else (lambda x: x)
    t0 = time.perf_counter()
    sync(step(image, tokens, action))
    first = time.perf_counter() - t0
    times = common.time_calls(lambda: step(image, tokens, action), warmup=args.warmup, iters=args.steps, sync=sync)
    out = {"compile_s": first, **common.summary(times), "params": ref.trainable_count(model)}
    if dev == "cuda":
        out["max_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def _side_in_subprocess(side: str, args) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    cmd = [
        sys.executable,
        "-m",
        "bench.gpu_mfu",
        "--side",
        side,
        "--side-out",
        path,
        "--batch",
        str(args.batch),
        "--window",
        str(args.window),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--instruction-length",
        str(args.instruction_length),
    ] + (["--quick"] if args.quick else [])
    proc = subprocess.run(cmd, check=False)
    if proc.returncode != 0:
        return {"error": f"side {side} exited {proc.returncode}"}
    with open(path) as f:
        return json.load(f)


def run(args) -> dict:
    vcfg = vla_config(args.quick, args.window)
    count = flops.train_step_flops(vcfg, args.batch, args.instruction_length)
    name = device_name()
    peak = peak_for(name, args.peak_tflops)
    on_gpu = "cpu" not in name.lower()
    sides = {}
    for side in ("ours", "torch"):
        print(f"running side {side} on {name} ...", flush=True)
        sides[side] = _side_in_subprocess(side, args) if (on_gpu or args.subprocess) else run_side(side, args)
    rows, result_sides = [], {}
    for side, r in sides.items():
        if "error" in r:
            result_sides[side] = r
            rows.append([side, r["error"], "", "", "", ""])
            continue
        s = r["median_s"]
        tflops = count["train_step_total"] / s / 1e12
        entry = {
            **r,
            "samples_per_s": args.batch / s,
            "frames_per_s": count["frames_per_step"] / s,
            "tokens_per_s": count["tokens_per_step"] / s,
            "model_tflops_per_s": tflops,
            "mfu": (tflops / peak) if peak else None,
        }
        result_sides[side] = entry
        rows.append(
            [
                side,
                s,
                entry["samples_per_s"],
                entry["tokens_per_s"],
                tflops,
                f"{100 * entry['mfu']:.1f}%" if peak else "n/a (no peak)",
            ]
        )
    result = {
        "benchmark": "gpu_mfu",
        "quick": bool(args.quick),
        "machine": common.machine_info({"device": name}),
        "config": {
            "model": "Kosmos-2 tiny (toy)" if args.quick else "Kosmos-2 full (microsoft/kosmos-2-patch14-224)",
            "head": f"lstm {vcfg.head_layers}x{vcfg.head_hidden_size}",
            "batch": args.batch,
            "window": vcfg.window_size,
            "chunk": vcfg.action_chunk,
            "text_len": args.instruction_length,
            "compute_dtype": vcfg.backbone.dtype,
            "params_dtype": "float32",
            "steps": args.steps,
        },
        "flops": count,
        "matmul_params": flops.matmul_params(vcfg),
        "peak_tflops": peak,
        "peak_source": "NVIDIA datasheet bf16 dense (H100 SXM / H200: 989)"
        if peak and not args.peak_tflops
        else ("--peak-tflops" if peak else "unknown device: pass --peak-tflops"),
        "sides": result_sides,
        "goal": "MFU >= 40% and ahead of the PyTorch reference",
    }
    ok = [s for s in result_sides.values() if "median_s" in s]
    if len(ok) == 2:
        result["speedup_vs_torch"] = result_sides["torch"]["median_s"] / result_sides["ours"]["median_s"]
        result["goal_met"] = bool(peak) and result_sides["ours"]["mfu"] >= 0.4 and result["speedup_vs_torch"] > 1
    common.print_table(
        f"train step, {vcfg.backbone.dtype}, {name}, batch {args.batch} x window {vcfg.window_size}",
        ["side", "median s", "samples/s", "tokens/s", "model TFLOP/s", "MFU"],
        rows,
    )
    return result


def main(argv=None) -> int:
    p = common.parser("gpu_mfu", __doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=0, help="samples per step (default 4; quick 2)")
    p.add_argument("--window", type=int, default=16, help="history frames per sample (RoboVLMs CALVIN: 16)")
    p.add_argument("--instruction-length", type=int, default=16)
    p.add_argument("--steps", type=int, default=0, help="timed steps per side (default 20; quick 2)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--peak-tflops", type=float, default=None, help="peak to divide by when the device is not known")
    p.add_argument("--subprocess", action="store_true", help="run each side in its own process (default on GPU)")
    p.add_argument("--side", choices=("ours", "torch"), help=argparse_hidden())
    p.add_argument("--side-out", help=argparse_hidden())
    args = p.parse_args(argv)
    args.steps = args.steps or (2 if args.quick else 20)
    if args.quick:
        args.warmup = min(args.warmup, 1)
    if args.quick:
        quick = common.quick_train_config()
        args.batch, args.instruction_length = quick.batch_size, quick.data.instruction_length
    args.batch = args.batch or 4
    if args.side:
        with open(args.side_out, "w") as f:
            json.dump(run_side(args.side, args), f)
        return 0
    common.write_result(args.out, run(args))
    return 0


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    raise SystemExit(main())
