"""Every GPU number of issue 16 in ONE call, for a session that is lent a GPU (an H200 in this project's pool):

1. the robot runtime on CUDA: the full-size Kosmos-2 policy (1.7 B parameters, policy_head / LSTM 4x1024,
   window 16, chunk 10, 7-D, random weights) exported at bfloat16 and at int8, each loaded with
   `vla_runtime.Policy.load(device="cuda")`: load seconds, per-step latency (incremental, after the
   window slid; and the full re-run of the window), one frame's backbone pass, peak CUDA memory;
2. the train step's MFU, ours vs HF torch on the same GPU, full-size Kosmos-2 policy head in bf16
   (`bench.gpu_mfu`, each side in its own process);
3. the runtime's CUDA-graph path: the bf16 export again, `Policy.load(device="cuda",
   compile="reduce-overhead")` (`--compile-mode`): the load's compilation seconds, the step, peak memory.

    python -m bench.gpu_all --out $OUT/gpu_all.json      # on the GPU machine (never run on one yet: no timing known)
    python -m bench.gpu_all --quick                      # toy size on CPU (the smoke test): 53 s on a 2-core Intel Xeon

The parts run in that order (the compiled one last: its compilation time is the least predictable) and
the JSON is rewritten after each part, so a command stopped by its time limit still leaves what was
finished. Nothing here needs the network:
weights are random (latency and MFU do not depend on their values). The MFU part's JSON is also
written on its own next to this one (``gpu_mfu.json``).

int8 exports are dequantised at load (to float16 on CUDA; `vla_runtime.quantize`): their compute is
the float16 path, their gain the file size and the host memory while loading; this part reports
both.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench import common


def full_runtime_config(quick: bool) -> dict:
    """The export's backbone + policy: full-size Kosmos-2 (vla_runtime.sizes), or runtime_helpers' tiny one."""
    if quick:
        from vla_jax.models.kosmos2 import Kosmos2Config

        backbone = Kosmos2Config.tiny().to_hf_dict()
        policy = {
            "structure": "policy_head",
            "head": "lstm",
            "window_size": 2,
            "action_chunk": 2,
            "action_dim": 2,
            "has_gripper": False,
            "head_hidden_size": 32,
            "head_layers": 1,
            "head_heads": 2,
        }
        return {"backbone": backbone, "policy": policy, "image_size": 32, "action_dim": 2}
    from vla_runtime.sizes import FULL_KOSMOS2, FULL_POLICY

    return {"backbone": FULL_KOSMOS2, "policy": FULL_POLICY, "image_size": 224, "action_dim": 7}


def write_exports(cfg: dict, out: str, dtypes) -> dict:
    """Random weights (std 0.02, norms at 1: finite in every dtype) -> one export per dtype, all from one model."""
    import torch

    from bench.runtime_latency import STATS
    from vla_runtime.bundle import write_export
    from vla_runtime.policy_io import Preprocessing
    from vla_runtime.structures import PolicyModel

    torch.manual_seed(0)
    with torch.device("meta"):
        model = PolicyModel.from_config({"backbone": cfg["backbone"], "policy": cfg["policy"]})
    state = {}
    for name, t in model.export_state_dict().items():
        x = torch.randn(t.shape) * 0.02
        if "norm" in name and name.endswith("weight"):
            x += 1.0
        state[name] = x
    del model
    # bench.runtime_latency's 2-D bounds, repeated for every action dim.
    per_dim = {k: v[0] for k, v in STATS["bench"]["action"].items()}
    stats = {
        "dataset": "bench",
        "normalization": "bounds",
        "action": {k: [v] * cfg["action_dim"] for k, v in per_dim.items()},
    }
    tokenizer = _byte_tokenizer_json()
    paths, seconds = {}, {}
    for dtype in dtypes:
        path = os.path.join(out, dtype)
        t0 = time.perf_counter()
        write_export(
            path,
            state_dict=state,
            policy_config=cfg["policy"],
            backbone_config=cfg["backbone"],
            tokenizer_json=tokenizer,
            tokenizer_config={"instruction_length": 16, "pad_id": 1, "add_special_tokens": True},
            preprocessing=Preprocessing(image_size=(cfg["image_size"], cfg["image_size"])).to_dict(),
            statistics=stats,
            model_card="# random-weight export (bench.gpu_all)\n",
            dtype=dtype,
        )
        seconds[dtype] = time.perf_counter() - t0
        paths[dtype] = path
    return {"paths": paths, "write_s": seconds, "parameters": sum(v.numel() for v in state.values())}


def _byte_tokenizer_json() -> str:
    """A small BPE tokenizer.json with Kosmos-2's special ids (<s>=0, <pad>=1, </s>=2), trained here offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False)
    tok.train_from_iterator(["go left around the obstacle and reach the target"] * 8, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return tok.to_str()


def runtime_part(args, device: str, dtypes, compile: str | None = None) -> dict:
    """Each export of `dtypes` loaded on `device` (with `compile`: `Policy.load(compile=...)`, the load then
    holding the compilation, and no full re-run) and stepped."""
    import torch

    from bench.runtime_step import backbone_pass
    from vla_runtime import Policy

    cfg = full_runtime_config(args.quick)
    out = {"device": device, "config": {"policy": cfg["policy"], "image_size": cfg["image_size"]}, "dtypes": {}}
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with tempfile.TemporaryDirectory(prefix="bench_gpu_all_", dir=args.tmp) as tmp:
        exports = write_exports(cfg, tmp, dtypes)
        out["parameters"], out["export_write_s"] = exports["parameters"], exports["write_s"]
        for dtype, path in exports["paths"].items():
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            inc = Policy.load(path, device=device, incremental=True, compile=compile)
            load_s = time.perf_counter() - t0
            full = Policy.load(path, device=device, incremental=False) if args.full_rerun and not compile else None
            window = inc.window
            rng = np.random.default_rng(0)
            frames = rng.integers(0, 256, (window + 1 + args.runtime_steps, cfg["image_size"], cfg["image_size"], 3))
            frames = frames.astype(np.uint8)
            res = {"file_bytes": os.path.getsize(os.path.join(path, "model.safetensors")), "load_s": load_s}
            res["compile"] = compile
            res["compute_dtype"] = str(inc.model.compute_dtype).replace("torch.", "")
            for name, policy in (("incremental", inc), ("full_rerun", full)):
                if policy is None:
                    continue
                policy.reset("go left around the obstacle")
                for f in frames[: window + 1]:  # fill the window and slide it once
                    policy.step(f)
                times = []
                for f in frames[window + 1 :]:
                    t0 = time.perf_counter()
                    policy.step(f)
                    sync()
                    times.append(time.perf_counter() - t0)
                res[f"{name}_ms"] = statistics.median(times) * 1e3
            floor = backbone_pass(inc)
            ftimes = []
            for _ in range(max(5, args.runtime_steps // 2)):
                t0 = time.perf_counter()
                floor()
                sync()
                ftimes.append(time.perf_counter() - t0)
            res["one_frame_backbone_ms"] = statistics.median(ftimes) * 1e3
            res["incremental_over_backbone"] = res["incremental_ms"] / res["one_frame_backbone_ms"]
            res["incremental_hz"] = 1e3 / res["incremental_ms"]
            if cuda:
                res["peak_cuda_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            out["dtypes"][dtype] = res
            print(f"  runtime {dtype} on {device}: {res}", flush=True)
            del inc, full
    return out


def mfu_part(args) -> dict:
    """bench.gpu_mfu in a subprocess (its sides each in their own process on a GPU), its JSON embedded."""
    import json

    path = os.path.join(os.path.dirname(os.path.abspath(args.out)), "gpu_mfu.json")
    cmd = [sys.executable, "-m", "bench.gpu_mfu", "--out", path, "--steps", str(args.mfu_steps)]
    cmd += ["--quick"] if args.quick else []
    proc = subprocess.run(cmd, check=False, cwd=common.repo_root())
    if proc.returncode != 0 or not os.path.isfile(path):
        return {"error": f"bench.gpu_mfu exited {proc.returncode}"}
    with open(path) as f:
        return json.load(f)


def run(args) -> dict:
    import torch

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda and not args.quick else "cpu"
    result = {
        "benchmark": "gpu_all",
        "quick": bool(args.quick),
        "machine": common.machine_info(
            {
                "torch_cuda_device": torch.cuda.get_device_name(0) if cuda else None,
                "torch_threads": torch.get_num_threads(),
            }
        ),
        "parts": {},
    }
    t0 = time.perf_counter()
    if "runtime" in args.parts:
        try:
            result["parts"]["runtime"] = runtime_part(args, device, args.dtypes)
        except Exception as err:  # noqa: BLE001 - one broken part must not lose the other's numbers
            result["parts"]["runtime"] = {"error": f"{type(err).__name__}: {err}"}
        result["parts_seconds"] = {"runtime": time.perf_counter() - t0}
        common.write_result(args.out, result)
    if "mfu" in args.parts:
        t1 = time.perf_counter()
        result["parts"]["mfu"] = mfu_part(args)
        result.setdefault("parts_seconds", {})["mfu"] = time.perf_counter() - t1
        common.write_result(args.out, result)
    if "compiled" in args.parts:
        t1 = time.perf_counter()
        try:
            result["parts"]["compiled"] = runtime_part(args, device, ["bfloat16"], compile=args.compile_mode)
        except Exception as err:  # noqa: BLE001 - as above
            result["parts"]["compiled"] = {"error": f"{type(err).__name__}: {err}"}
        result.setdefault("parts_seconds", {})["compiled"] = time.perf_counter() - t1
    rows = []
    for part in ("runtime", "compiled"):
        for dtype, r in result["parts"].get(part, {}).get("dtypes", {}).items():
            rows.append(
                [
                    dtype + (f" compile={r['compile']}" if r.get("compile") else ""),
                    r["compute_dtype"],
                    r["incremental_ms"],
                    r.get("full_rerun_ms", ""),
                    r["one_frame_backbone_ms"],
                    r["incremental_hz"],
                    r.get("peak_cuda_memory_gib", ""),
                    r["load_s"],
                ]
            )
    if rows:
        common.print_table(
            f"runtime on {device}",
            ["export", "compute", "step ms", "re-run ms", "1-frame bb ms", "Hz", "peak GiB", "load s"],
            rows,
        )
    return result


def main(argv=None) -> int:
    from vla_runtime.structures import COMPILE_MODES

    p = common.parser("gpu_all", str(__doc__).splitlines()[0])
    parts = ["runtime", "mfu", "compiled"]
    p.add_argument("--parts", nargs="+", default=parts, choices=parts)
    p.add_argument(
        "--compile-mode",
        default="reduce-overhead",
        choices=COMPILE_MODES,
        help="the compiled part's Policy.load(compile=MODE) (default reduce-overhead: CUDA graphs; on a CPU it is "
        "the default compile)",
    )
    p.add_argument("--dtypes", nargs="+", default=["bfloat16", "int8"], choices=["float32", "bfloat16", "int8"])
    p.add_argument("--runtime-steps", type=int, default=0, help="timed robot steps per export (default 30; quick 3)")
    p.add_argument("--mfu-steps", type=int, default=0, help="timed train steps per side (default 15; quick 2)")
    p.add_argument("--no-full-rerun", dest="full_rerun", action="store_false", help="skip the window re-run timing")
    p.add_argument("--tmp", default=None, help="where the exports are written (default: the system temp dir)")
    args = p.parse_args(argv)
    args.runtime_steps = args.runtime_steps or (3 if args.quick else 30)
    args.mfu_steps = args.mfu_steps or (2 if args.quick else 15)
    common.write_result(args.out, run(args))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    raise SystemExit(main())
