"""Robot runtime, before vs after: the hand-written torch Kosmos-2 twin vs transformers' `Kosmos2Model`.

    git archive c2c1003 runtime/vla_runtime | tar -x -C /tmp/before   # the last commit with the twin
    python -m bench.runtime_before_after --before /tmp/before/runtime  # 13-16 min on 2 cores at load 7-10

Both runtimes load the SAME export folders (random float32 weights of configs/tiny.py's and
configs/demo.py's models, one per structure) in ONE process and are stepped in turn, frame by
frame, so machine drift hits both alike (the shared machine's load moves several-fold within a
minute). Per path: median per-step latency of `Policy.step` once the window has slid (the steady
state of a long episode), incremental (KV cache / cached features) and full re-run of the window,
and one frame's backbone pass (vision tower + projection + one block through the decoder, no head):
the floor of any step. Frames come at the model's input size (no resize), 1 torch thread.

The old package is imported under another name (`vla_runtime_before`) from a copy, so both live
in the same interpreter; the exports name their architecture the way the old reader expects.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

from bench import common

STRUCTURES = (("policy_head", "lstm"), ("interleaved", "mlp"), ("one_step_discrete", "discrete"))


def models() -> dict:
    """configs/tiny.py's and configs/demo.py's models, and a wider one where compute outweighs per-call costs."""
    from vla_jax.models.kosmos2 import Kosmos2Config

    tiny = common.vla_config_of(common.quick_train_config())
    demo = common.vla_config_of(common.load_config_file(str(common.repo_root() / "configs/demo.py"), "unused"))
    wide = demo.replace(
        window_size=4,
        backbone=Kosmos2Config().replace(
            vision=dict(
                hidden_size=256,
                intermediate_size=1024,
                num_hidden_layers=4,
                num_attention_heads=4,
                image_size=112,
                patch_size=14,
            ),
            text=dict(vocab_size=1024, embed_dim=512, layers=4, ffn_dim=2048, attention_heads=8, dropout=0.0),
            latent_query_num=64,
        ),
    )
    return {
        "tiny (configs/tiny.py)": tiny,
        "demo (configs/demo.py)": demo,
        "wide (vision 4x256 at 112 px, text 4x512, 64 latents, window 4)": wide,
    }


def write_export(vcfg, out: str) -> str:
    import jax

    from bench.runtime_latency import STATS
    from vla_jax.export.export import export_policy
    from vla_jax.vla import init_policy

    params = jax.device_get(init_policy(vcfg, 0, instruction_length=8))
    rng = np.random.default_rng(0)  # every leaf random: a zero action token would make discrete decoding trivial
    params = jax.tree.map(lambda x: (rng.standard_normal(x.shape) * 0.2).astype(np.float32), params)
    export_policy(vcfg, params, STATS, None, out, "float32", instruction_length=8)
    path = os.path.join(out, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["architecture"] = "kosmos2"  # what the old reader checks (config.json itself is not hashed)
    with open(path, "w") as f:
        json.dump(config, f)
    return out


def import_before(runtime_dir: str, tmp: str):
    package = os.path.join(runtime_dir, "vla_runtime")
    if not os.path.isfile(os.path.join(package, "kosmos2.py")):
        raise SystemExit(f"--before {runtime_dir}: no vla_runtime/kosmos2.py there (extract a commit with the twin)")
    shutil.copytree(package, os.path.join(tmp, "vla_runtime_before"))
    sys.path.insert(0, tmp)
    return importlib.import_module("vla_runtime_before")


def backbone_pass(policy):
    """One frame through the backbone as the incremental step runs it (no head), for either runtime."""
    import torch

    model = policy.model
    size = policy.preprocessing.image_size
    pixels = torch.randn(1, 3, *size, dtype=model.compute_dtype)
    tokens, mask = policy._tokens, policy._token_mask

    @torch.no_grad()
    def run():
        latents = model._encode(pixels)
        if model.structure != "one_step_discrete":
            model._frame_features(latents, tokens, mask)

    return run


def measure(runtimes: dict, export: str, steps: int) -> dict:
    paths = {}
    for name, module in runtimes.items():
        for incremental in (True, False):
            policy = module.Policy.load(export, incremental=incremental)
            policy.reset("go left")
            paths[f"{name} {'incremental' if incremental else 'full re-run'}"] = policy
    window = next(iter(paths.values())).window
    size = tuple(next(iter(paths.values())).preprocessing.image_size)
    frames = np.random.default_rng(1).integers(0, 256, (window + 2 + steps, *size, 3), dtype=np.uint8)
    for policy in paths.values():  # fill the window and slide it once
        for f in frames[: window + 2]:
            policy.step(f)
    passes = {f"{name} one-frame backbone": backbone_pass(paths[f"{name} incremental"]) for name in runtimes}
    times = {k: [] for k in [*paths, *passes]}
    for f in frames[window + 2 :]:
        for key, policy in paths.items():
            t0 = time.perf_counter()
            policy.step(f)
            times[key].append(time.perf_counter() - t0)
        for key, run in passes.items():
            t0 = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def run(args) -> dict:
    import torch

    torch.set_num_threads(args.torch_threads)
    with tempfile.TemporaryDirectory(prefix="bench_before_after_") as tmp:
        import vla_runtime

        runtimes = {"before": import_before(args.before, tmp), "after": vla_runtime}
        results, rows = [], []
        for model_name, base in models().items():
            for structure, head in STRUCTURES:
                vcfg = base.replace(structure=structure, head=head)
                export = write_export(vcfg, os.path.join(tmp, f"{len(results)}"))
                ms = measure(runtimes, export, args.steps)
                r = {
                    "model": model_name,
                    "structure": structure,
                    "head": head,
                    "window": vcfg.window_size,
                    "median_ms": ms,
                    "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
                }
                for which in ("before", "after"):
                    r[f"{which}_step_over_backbone"] = ms[f"{which} incremental"] / ms[f"{which} one-frame backbone"]
                r["after_over_before_incremental"] = ms["after incremental"] / ms["before incremental"]
                r["after_over_before_backbone"] = ms["after one-frame backbone"] / ms["before one-frame backbone"]
                results.append(r)
                rows.append(
                    [
                        model_name,
                        f"{structure}/{head}",
                        *(
                            ms[k]
                            for k in (
                                "before incremental",
                                "after incremental",
                                "before full re-run",
                                "after full re-run",
                                "before one-frame backbone",
                                "after one-frame backbone",
                            )
                        ),
                        r["after_over_before_incremental"],
                        r["after_step_over_backbone"],
                        r["load_average_1_5_15"][0],
                    ]
                )
    common.print_table(
        "per-step latency (median ms, 1 torch thread, batch 1, CPU float32): before = hand-written twin, "
        "after = transformers' Kosmos2Model",
        [
            "model",
            "structure",
            "inc before",
            "inc after",
            "full before",
            "full after",
            "1-frame bb before",
            "1-frame bb after",
            "inc after/before",
            "after step/1-frame bb",
            "load 1 min",
        ],
        rows,
    )
    return {
        "benchmark": "runtime_before_after",
        "before": os.path.abspath(args.before),
        "machine": common.machine_info({"torch_threads": torch.get_num_threads()}),
        "steps": args.steps,
        "results": results,
    }


def main(argv=None) -> int:
    p = common.parser("runtime_before_after", __doc__.splitlines()[0])
    p.add_argument(
        "--before", required=True, help="a runtime/ folder whose vla_runtime has the hand-written kosmos2.py"
    )
    p.add_argument("--steps", type=int, default=60, help="timed steps per path (after the window slid)")
    p.add_argument("--torch-threads", type=int, default=1)
    args = p.parse_args(argv)
    common.write_result(args.out, run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
