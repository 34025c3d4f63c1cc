"""Robot runtime per backbone family x structure: `Policy.step` against one frame's backbone pass, and Hz.

    python -m bench.backbone_latency                    # every family at demo width (64 wide, 48 px), 4 structures
    python -m bench.backbone_latency --width tiny       # each family's tiny() (32 wide), as RESULTS.md 4d
    python -m bench.backbone_latency --quick            # tiny width, 2 families, 3 structures, 3 steps (smoke test)
    python -m bench.backbone_latency --camera 480 640   # frames as a 640x480 camera delivers them (resize included)
    python -m bench.backbone_latency --compile default  # the step through torch.compile, against the eager floor

Per family x structure: random weights on the family's Flax config -> `vla_jax.export.export_policy`
(float32, the real export path) -> `vla_runtime.Policy` (incremental). The episode is stepped until the
window has slid, then ``--steps`` frames are timed with the step and one frame's backbone pass
(`bench.runtime_step.backbone_pass`: vision + projection + ONE decoder call over the frame's block, the
same HF modules) interleaved frame by frame, so the shared host's load hits both alike; the medians,
their ratio and the step's Hz are reported. Also the full re-run of the window (`incremental=False`).
Torch single-threaded, batch 1, frames at the model's input size; with ``--camera H W`` at the camera's, so the
step also pays `policy_io.resize_frame` (what a robot whose camera cannot deliver the model's size pays; the floor
does not, so those ratios are not held to the goal). With ``--compile MODE`` the stepped policy is loaded with
`Policy.load(compile=MODE)` and the floor comes from an eager copy of it, so the ratio says what the opt-in
compile buys against the same eager backbone pass; the load's compilation seconds (`compile_s`) and the first
step's are recorded.

Demo width = configs/demo.py's widths applied to each family's tiny() layout: every width field doubled
(32 -> 64; CLIP's 48 -> 96), 48 px images where the family's patch grid allows it (Qwen's 28 px merge
unit keeps its 56 px), 16 Kosmos-2 latents; layers, heads and vocabularies stay tiny's. Window 4,
chunk 2, 2-D actions, head width 64. For one_step_discrete (autoregressive) the step decodes C*A action
tokens one by one, so its ratio is not comparable with the others' (reported, not a goal); its
``discrete_decoding="parallel"`` row (structure key ``one_step_discrete/parallel``) reads all C*A from one
decoder pass and is held to the goal like the per-frame structures. For interleaved, once the window
slides every block's position shifts and the decoder re-runs all T blocks (runtime/README.md), so its
floor is T blocks, not one: its ratio is reported against one block as for the others, and also against
its own floor (`bench.runtime_step.window_pass`: vision on the new frame + ONE decoder call over the T
blocks), which says whether anything beyond what the structure computes is left to remove. The
``interleaved_attention="streaming"`` row (``interleaved/streaming``, vla_jax/vla.py's `streaming_mask`) is the
interleaved window trained so that nothing cached goes stale: its step decodes the new block and the action token
over the cached blocks, and it is held to the goal. Families it cannot serve exactly (Kosmos-2's absolute
positions, IDEFICS' cross-attention) are skipped, named and counted; PaliGemma 2's tiny 16-slot sliding window is
widened to the released model's 4096 for that row (`for_variant`).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time

import jax
import numpy as np
import torch

from bench import common
from data_pipelines.tokenize import train_tokenizer
from vla_jax.errors import VLAJaxError
from vla_jax.export.export import export_policy
from vla_jax.models.clip_kosmos2 import ClipKosmos2Config
from vla_jax.models.idefics_config import IdeficsConfig
from vla_jax.models.kosmos2 import Kosmos2Config
from vla_jax.models.llava import LlavaConfig
from vla_jax.models.paligemma import PaliGemmaConfig
from vla_jax.models.qwen2_5_vl import Qwen2_5_VLConfig
from vla_jax.models.qwen2_vl import Qwen2VLConfig
from vla_jax.models.smolvlm import SmolVLMConfig
from vla_jax.vla import VLAConfig, init_policy
from vla_runtime.structures import COMPILE_MODES

FAMILIES = {
    "kosmos-2": Kosmos2Config.tiny,
    "clip-kosmos-2": ClipKosmos2Config.tiny,
    "paligemma (Gemma 2)": lambda: PaliGemmaConfig.tiny("gemma2"),
    "smolvlm": SmolVLMConfig.tiny,
    "llava": LlavaConfig.tiny,
    "qwen2_5_vl": Qwen2_5_VLConfig.tiny,
    "qwen2_vl": Qwen2VLConfig.tiny,
    "idefics": IdeficsConfig.tiny,
}
STRUCTURES = [  # (structure, head, VLAConfig fields that pick a variant of it)
    ("policy_head", "lstm", {}),
    ("interleaved", "mlp", {}),
    ("interleaved", "mlp", {"interleaved_attention": "streaming"}),
    ("one_step_continuous", "mlp", {}),
    ("one_step_discrete", "discrete", {}),
    ("one_step_discrete", "discrete", {"discrete_decoding": "parallel"}),
]


def structure_key(structure: str, variant: dict) -> str:
    """The row's name in --structures and the results: the structure, then `/` + each variant value
    (``one_step_discrete/parallel``, ``interleaved/streaming``)."""
    return "/".join([structure, *variant.values()])


QUICK_FAMILIES = ("kosmos-2", "qwen2_5_vl")  # --quick (the smoke test): a learned-query and a 3-D-position family
WIDTH_FIELDS = ("hidden_size", "intermediate_size", "embed_dim", "ffn_dim", "head_dim", "out_hidden_size")
DEMO_IMAGE = 48  # configs/demo.py's image size
STATS = {
    "bench": {
        "action": {
            "mean": [0.0, 0.0],
            "std": [1.0, 1.0],
            "min": [-1.0, -1.0],
            "max": [1.0, 1.0],
            "q01": [-1.0, -1.0],
            "q99": [1.0, 1.0],
            "mask": [True, True],
        },
        "normalization": "bounds",
    }
}


def _grid_unit(vision) -> int:
    """The image side must be a multiple of this (patch x any spatial merge / pixel-shuffle factor)."""
    return int(vision.patch_size) * int(getattr(vision, "spatial_merge_size", 1) or 1)


def demo_width(cfg, scale_factor: int = 1):
    """A family's tiny() config at configs/demo.py's widths: width fields x2, 48 px where the grid allows."""

    def widen(c):
        changes = {}
        for f in dataclasses.fields(c):
            v = getattr(c, f.name)
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                changes[f.name] = widen(v)
            elif f.name in WIDTH_FIELDS and isinstance(v, int) and not isinstance(v, bool):
                changes[f.name] = 2 * v
            elif f.name == "mrope_section" and isinstance(v, (tuple, list)):
                changes[f.name] = tuple(2 * int(x) for x in v)  # sums to head_dim / 2
            elif f.name == "query_pre_attn_scalar" and isinstance(v, (int, float)):
                changes[f.name] = 2 * v  # Gemma 2's is head_dim
        return dataclasses.replace(c, **changes)

    out = widen(cfg)
    vision = out.vision
    unit = _grid_unit(vision) * scale_factor
    if DEMO_IMAGE % unit == 0:
        out = dataclasses.replace(out, vision=dataclasses.replace(vision, image_size=DEMO_IMAGE))
    if hasattr(out, "latent_query_num"):
        out = dataclasses.replace(out, latent_query_num=16)
    return out


def backbone_for(name: str, width: str):
    cfg = FAMILIES[name]()
    if width == "tiny":
        return cfg
    return demo_width(cfg, int(getattr(cfg, "scale_factor", 1) or 1))


def for_variant(backbone, variant: dict):
    """The backbone a variant row runs on: for streaming, a Gemma 2 sliding window of tiny()'s 16 slots (a test
    size, there to exercise the sliding layers) becomes PaliGemma 2's released 4096, which holds the window."""
    if variant.get("interleaved_attention") == "streaming" and backbone.sliding_window is not None:
        return backbone.replace(text={"sliding_window": 4096})
    return backbone


def _export(backbone, structure, head, tok_dir, out, hidden: int, variant: dict | None = None) -> str:
    cfg = VLAConfig(
        backbone=backbone,
        structure=structure,
        head=head,
        **(variant or {}),
        window_size=4,
        action_chunk=2,
        action_dim=2,
        has_gripper=False,
        head_hidden_size=hidden,
        head_layers=1,
        head_heads=2,
    )
    shapes = jax.eval_shape(lambda: init_policy(cfg, 0))
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: (rng.standard_normal(s.shape) * 0.2).astype(np.float32), shapes)
    export_policy(cfg, params, STATS, tok_dir, out, "float32", instruction_length=12)
    return out


def measure(export: str, steps: int, camera: tuple[int, int] | None = None, compile: str | None = None) -> dict:
    """Incremental step and one frame's backbone pass interleaved frame by frame; then the full re-run. `camera`:
    the frames' (H, W) when not the model's input size (the step then includes the resize). `compile`: the
    stepped policy's `Policy.load(compile=...)`; the floor is then an eager copy's."""
    from bench.runtime_step import backbone_pass, window_pass
    from vla_runtime import Policy

    inc = Policy.load(export, incremental=True)
    compile_s = None
    if compile:
        import torch._dynamo

        torch._dynamo.reset()  # each row compiles its own: dynamo's shape limit counts every model in the process
        t0 = time.perf_counter()
        inc.compile_backbone(compile)  # what Policy.load(compile=...) does: every shape of an episode, at load
        compile_s = time.perf_counter() - t0
    eager = Policy.load(export, incremental=True) if compile else inc  # the floor's modules
    full = Policy.load(export, incremental=False)
    instruction = "Navigate around the obstacle on the left side and reach the target"
    policies = (inc, full) if eager is inc else (inc, eager, full)
    for p in policies:
        p.reset(instruction)
    size = tuple(inc.preprocessing.image_size)
    warm = inc.window + 2  # fill the window and slide it
    frame_size = tuple(camera) if camera else size
    frames = np.random.default_rng(1).integers(0, 256, (warm + steps, *frame_size, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    inc.step(frames[0])
    first_step_s = time.perf_counter() - t0  # with --compile, milliseconds: the load compiled it
    for p in policies[1:]:
        p.step(frames[0])
    for f in frames[1:warm]:
        for p in policies:
            p.step(f)
    floor = backbone_pass(eager)
    window = window_pass(eager) if inc.model.structure == "interleaved" and not inc.model.streaming else None
    step_s, floor_s, full_s, window_s = [], [], [], []
    for f in frames[warm:]:
        t0 = time.perf_counter()
        inc.step(f)
        step_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        floor()
        floor_s.append(time.perf_counter() - t0)
        if window is not None:
            t0 = time.perf_counter()
            window()
            window_s.append(time.perf_counter() - t0)
    for f in frames[warm : warm + max(3, steps // 3)]:
        t0 = time.perf_counter()
        full.step(f)
        full_s.append(time.perf_counter() - t0)
    med = statistics.median
    own_floor = {}
    if window_s:  # interleaved: also against the window's one decoder call, what its computation must do
        own_floor = {
            "window_pass_ms": med(window_s) * 1e3,
            "incremental_over_window_pass": med(step_s) / med(window_s),
            "paired_ratio_window": med([a / b for a, b in zip(step_s, window_s)]),
        }
    return {
        **own_floor,
        "window": inc.window,
        "image_size": list(size),
        "frame_size": list(frame_size),
        "incremental_ms": med(step_s) * 1e3,
        "first_step_s": first_step_s,
        **({"compile_s": compile_s} if compile else {}),
        "one_frame_backbone_ms": med(floor_s) * 1e3,
        "full_rerun_ms": med(full_s) * 1e3,
        "incremental_over_one_frame": med(step_s) / med(floor_s),
        # the median of each frame's step / its own floor (the two timed back to back): steadier under load
        "paired_ratio": med([a / b for a, b in zip(step_s, floor_s)]),
        "hz": 1.0 / med(step_s),
        "params": int(sum(p.numel() for p in inc.model.parameters())),
    }


def main(argv=None) -> int:
    p = common.parser("backbone_latency", str(__doc__).splitlines()[0])
    p.add_argument("--width", choices=("demo", "tiny"), default="demo", help="demo (default) or each tiny()")
    p.add_argument("--steps", type=int, default=0, help="timed steps per row (default 40; quick 3)")
    p.add_argument("--families", nargs="+", default=None, help="only these FAMILIES keys")
    p.add_argument(
        "--structures",
        nargs="+",
        default=None,
        choices=sorted({structure_key(s, v) for s, _, v in STRUCTURES}),
        help="only these structures (one_step_discrete/parallel: discrete_decoding='parallel'; "
        "interleaved/streaming: interleaved_attention='streaming', rotary-position families only)",
    )
    p.add_argument(
        "--camera",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        default=None,
        help="feed frames of this height and width (e.g. 480 640): the step then includes the resize to the model's "
        "input size, the floor does not",
    )
    p.add_argument(
        "--compile",
        default=None,
        choices=COMPILE_MODES,
        help="step through Policy.load(compile=MODE) (torch.compile of the backbone's per-step calls); the floor "
        "stays eager; the load pays the compilation (compile_s in the JSON)",
    )
    args = p.parse_args(argv)
    if args.camera and min(args.camera) < 2:
        p.error(f"--camera {args.camera[0]} {args.camera[1]}: a camera frame is at least 2 x 2 pixels")
    width = "tiny" if args.quick else args.width
    steps = args.steps or (3 if args.quick else 40)
    # --quick: policy_head, interleaved (its window floor), streaming interleaved (refused on Kosmos-2's absolute
    # positions) and parallel discrete decoding, each path once
    structures = [STRUCTURES[i] for i in (0, 1, 2, 5)] if args.quick else STRUCTURES
    if args.structures:
        structures = [s for s in STRUCTURES if structure_key(s[0], s[2]) in args.structures]
    torch.set_num_threads(1)
    rows, results, skipped = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        train_tokenizer(["go left around the obstacle", "go right"], f"{tmp}/tok", vocab_size=200)
        for name in args.families or (QUICK_FAMILIES if args.quick else FAMILIES):
            backbone = backbone_for(name, width)
            for structure, head, variant in structures:
                hidden = 32 if width == "tiny" else 64
                key = structure_key(structure, variant)
                try:
                    row_backbone = for_variant(backbone, variant)
                    out = _export(row_backbone, structure, head, f"{tmp}/tok", f"{tmp}/{len(results)}", hidden, variant)
                except VLAJaxError as e:  # a variant this family cannot run (streaming on absolute positions)
                    skipped.append({"family": name, "structure": key, "why": str(e)})
                    print(f"skipped {name} {key}: {e}", flush=True)
                    continue
                r = {
                    "family": name,
                    "structure": key,
                    "head": head,
                    "width": width,
                    **measure(out, steps, args.camera, args.compile),
                }
                r["load_1min"] = round(os.getloadavg()[0], 2)
                results.append(r)
                rows.append(
                    (
                        name,
                        f"{structure}/{head}" + key[len(structure) :],
                        r["params"],
                        r["incremental_ms"],
                        r["one_frame_backbone_ms"],
                        r["incremental_over_one_frame"],
                        r["paired_ratio"],
                        r.get("paired_ratio_window", "-"),
                        r["hz"],
                        r["full_rerun_ms"],
                        r["load_1min"],
                    )
                )
                print(rows[-1], flush=True)
    frames = "model-size frames"
    if args.camera:
        frames = f"{args.camera[1]}x{args.camera[0]} camera frames, resize in the step"
    if args.compile:
        frames += f", step torch.compile({args.compile!r}), floor eager"
    common.print_table(
        f"runtime step per backbone ({width} width, {frames}, float32, CPU, 1 thread, median of {steps})",
        [
            "family",
            "structure",
            "params",
            "step ms",
            "1 frame ms",
            "step / frame",
            "paired",
            "paired / T blocks",
            "Hz",
            "full ms",
            "load",
        ],
        rows,
    )
    for x in skipped:
        print(f"skipped (the family cannot run this variant): {x['family']} {x['structure']}")
    common.write_result(
        args.out,
        {
            "benchmark": "backbone_latency",
            "quick": bool(args.quick),
            "width": width,
            "steps": steps,
            "camera": list(args.camera) if args.camera else None,
            "compile": args.compile,
            "machine": common.machine_info({"torch_threads": torch.get_num_threads()}),
            "results": results,
            "skipped": skipped,
            "goal": "incremental step <= 1.2x one frame's backbone pass (issue 16; not for the autoregressive "
            "one_step_discrete, nor with --camera, whose step also resizes)",
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
