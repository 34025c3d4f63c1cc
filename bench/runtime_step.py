"""Robot step, before vs after an optimisation of the runtime: `Policy.step` of this checkout's `vla_runtime`
vs another revision's, stepped in turn in ONE process on the same exports, and the ratio of each to one
frame's backbone pass.

    git archive 9738947 runtime/vla_runtime | tar -x -C /tmp/before    # the revision to compare with
    python -m bench.runtime_step --before /tmp/before/runtime          # demo + small models, 4 structures
    python -m bench.runtime_step --quick                               # toy size, this runtime against itself

Per model x structure: random float32 weights (every leaf random, `bench.runtime_before_after.write_export`)
-> one export both runtimes load; frames at the model's input size (no resize), 1 torch thread,
batch 1; the episode is stepped until the window has slid, then ``--steps`` frames are timed with
the two runtimes and the backbone pass interleaved frame by frame, so the shared host's load hits
all three alike. Reported: median ms per step, Hz, the ratio to the backbone pass, after / before,
and the largest |before - after| over every returned chunk (the optimisation must not change the
actions).

One frame's backbone pass (the floor of any step) = the vision tower + projection + ONE decoder
call over that frame's block (the instruction's valid tokens, the image tokens and the action
token; no padding, no head, no preprocessing), built once outside the timed region, on the same
HF modules. For one_step_discrete the step also decodes C*A action tokens, so its ratio is not
comparable with the others'.
"""

from __future__ import annotations

import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

from bench import common

STRUCTURES = (
    ("policy_head", "lstm"),
    ("interleaved", "mlp"),
    ("one_step_continuous", "mlp"),
    ("one_step_discrete", "discrete"),
)


def models(quick: bool) -> dict:
    """configs/demo.py's model (windows 4 and 8, as RESULTS.md section 4) and the wider "small" one of section 4b."""
    from bench.runtime_before_after import models as ba_models

    m = ba_models()
    if quick:
        return {"tiny (configs/tiny.py)": m["tiny (configs/tiny.py)"]}
    demo = m["demo (configs/demo.py)"]
    return {
        "demo, window 4": demo.replace(window_size=4),
        "demo, window 8": demo.replace(window_size=8),
        "small (vision 4x256 at 112 px, text 4x512, 64 latents, window 4)": m[
            "wide (vision 4x256 at 112 px, text 4x512, 64 latents, window 4)"
        ],
    }


def import_runtime(runtime_dir: str | None, tmp: str):
    """`vla_runtime` of another checkout, imported as `vla_runtime_before` (None: this checkout's, again)."""
    if runtime_dir is None:
        import vla_runtime

        return vla_runtime
    package = os.path.join(runtime_dir, "vla_runtime")
    if not os.path.isfile(os.path.join(package, "policy.py")):
        raise SystemExit(f"--before {runtime_dir}: no vla_runtime/policy.py there (extract runtime/ of a commit)")
    shutil.copytree(package, os.path.join(tmp, "vla_runtime_before"))
    sys.path.insert(0, tmp)
    return importlib.import_module("vla_runtime_before")


def backbone_pass(policy):
    """Vision + projection + one decoder call over the frame's valid block, on `policy`'s modules (this checkout's
    `PolicyModel.template` lays the block out)."""
    import torch

    model = policy.model
    adapter = model.adapter
    size = policy.preprocessing.image_size
    pixels = torch.randn(1, 3, *size, dtype=model.compute_dtype)
    tokens, mask = policy._tokens, policy._token_mask.bool()
    with torch.inference_mode():
        latents = adapter.encode_images(pixels)
        tail = model.action_token.expand(1, 1, -1) if hasattr(model, "action_token") else latents[:, :0]
        template = model.template(latents, tokens, mask, tail)  # this checkout's per-episode frame block

    @torch.inference_mode()
    def run():
        return model._decode_template(template, adapter.encode_images(pixels))  # as the step: positions once

    return run


def window_pass(policy):
    """interleaved's own floor once its window has slid: vision + projection on the new frame and ONE decoder call
    over the window's T blocks (the episode's window buffer, its positions computed once), the least its training
    computation needs per step: every block's position shifts with the slide, so no block's KV stays valid."""
    import torch

    model, state = policy.model, policy._state
    if model.structure != "interleaved" or state is None or state.window_positions is None:
        raise ValueError("window_pass needs an interleaved policy stepped until its window slid")
    pixels = torch.randn(1, 3, *policy.preprocessing.image_size, dtype=model.compute_dtype)

    @torch.inference_mode()
    def run():
        model.adapter.encode_images(pixels)
        return model._decode(state.window, positions=state.window_positions)

    return run


def measure(runtimes: dict, export: str, steps: int) -> dict:
    policies = {}
    for name, module in runtimes.items():
        policies[name] = module.Policy.load(export, incremental=True)
        policies[name].reset("go left")
    first = next(iter(policies.values()))
    window, size = first.window, tuple(first.preprocessing.image_size)
    frames = np.random.default_rng(1).integers(0, 256, (window + 2 + steps, *size, 3), dtype=np.uint8)
    diff = 0.0
    for f in frames[: window + 2]:  # fill the window and slide it once
        out = [p.step(f) for p in policies.values()]
        diff = max(diff, float(np.abs(out[0] - out[-1]).max()))
    floor = backbone_pass(policies[list(policies)[-1]])
    times = {k: [] for k in [*policies, "one-frame backbone"]}
    for f in frames[window + 2 :]:
        out = []
        for key, policy in policies.items():
            t0 = time.perf_counter()
            out.append(policy.step(f))
            times[key].append(time.perf_counter() - t0)
        diff = max(diff, float(np.abs(out[0] - out[-1]).max()))
        t0 = time.perf_counter()
        floor()
        times["one-frame backbone"].append(time.perf_counter() - t0)
    return {"median_ms": {k: statistics.median(v) * 1e3 for k, v in times.items()}, "max_abs_diff": diff}


def run(args) -> dict:
    import torch

    from bench.runtime_before_after import write_export

    torch.set_num_threads(args.torch_threads)
    results, rows = [], []
    with tempfile.TemporaryDirectory(prefix="bench_runtime_step_") as tmp:
        runtimes = {"before": import_runtime(args.before, tmp), "after": import_runtime(None, tmp)}
        for model_name, base in models(args.quick).items():
            if args.models and not any(m in model_name for m in args.models):
                continue
            for structure, head in STRUCTURES:
                vcfg = base.replace(structure=structure, head=head)
                export = write_export(vcfg, os.path.join(tmp, f"export{len(results)}"))
                m = measure(runtimes, export, args.steps)
                ms = m["median_ms"]
                r = {
                    "model": model_name,
                    "structure": structure,
                    "head": head,
                    "window": vcfg.window_size,
                    **m,
                    "hz": {k: 1e3 / ms[k] for k in ("before", "after")},
                    "before_over_backbone": ms["before"] / ms["one-frame backbone"],
                    "after_over_backbone": ms["after"] / ms["one-frame backbone"],
                    "after_over_before": ms["after"] / ms["before"],
                    "load_1min": round(os.getloadavg()[0], 2),
                }
                results.append(r)
                rows.append(
                    [
                        model_name,
                        f"{structure}/{head}",
                        ms["before"],
                        ms["after"],
                        ms["one-frame backbone"],
                        r["before_over_backbone"],
                        r["after_over_backbone"],
                        r["hz"]["after"],
                        r["after_over_before"],
                        m["max_abs_diff"],
                        r["load_1min"],
                    ]
                )
                print(rows[-1], flush=True)
    common.print_table(
        "robot step (median ms, 1 torch thread, batch 1, CPU float32)",
        [
            "model",
            "structure",
            "before",
            "after",
            "1-frame bb",
            "before/bb",
            "after/bb",
            "after Hz",
            "after/before",
            "max |diff|",
            "load",
        ],
        rows,
    )
    return {
        "benchmark": "runtime_step",
        "quick": bool(args.quick),
        "before": os.path.abspath(args.before) if args.before else "this checkout (self-comparison)",
        "machine": common.machine_info({"torch_threads": torch.get_num_threads()}),
        "steps": args.steps,
        "results": results,
        "goal": "incremental step <= 1.2x one frame's backbone pass (issue 16)",
    }


def main(argv=None) -> int:
    p = common.parser("runtime_step", str(__doc__).splitlines()[0])
    p.add_argument("--before", default=None, help="a runtime/ folder of another revision (default: this one)")
    p.add_argument("--steps", type=int, default=0, help="timed steps per path (default 60; quick 3)")
    p.add_argument("--torch-threads", type=int, default=1)
    p.add_argument("--models", nargs="+", default=None, help="only the models whose name contains one of these")
    args = p.parse_args(argv)
    args.steps = args.steps or (3 if args.quick else 60)
    common.write_result(args.out, run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
