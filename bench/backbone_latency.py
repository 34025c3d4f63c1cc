"""Robot runtime per backbone family: `Policy.step` latency, incremental vs full re-run of the window.

    python -m bench.backbone_latency            # every family's tiny() config, window 4, two structures
    python -m bench.backbone_latency --quick    # fewer steps (smoke test)

Per family: random weights on the family's `tiny()` Flax config -> `vla_jax.export.export_policy`
(float32, the real export path) -> `vla_runtime.bench.benchmark` (the `vla-runtime bench` numbers:
steady-state medians once the window slides, the first-window median, one frame's backbone pass).
Torch single-threaded (batch 1). Tiny widths only: the released sizes do not fit this machine twice,
and demo-width numbers for Kosmos-2 are `bench.runtime_latency`'s.
"""

from __future__ import annotations

import tempfile

import jax
import numpy as np
import torch

from bench import common
from data_pipelines.tokenize import train_tokenizer
from vla_jax.export.export import export_policy
from vla_jax.models.clip_kosmos2 import ClipKosmos2Config
from vla_jax.models.idefics_config import IdeficsConfig
from vla_jax.models.kosmos2 import Kosmos2Config
from vla_jax.models.llava import LlavaConfig
from vla_jax.models.paligemma import PaliGemmaConfig
from vla_jax.models.qwen2_5_vl import Qwen2_5_VLConfig
from vla_jax.models.smolvlm import SmolVLMConfig
from vla_jax.vla import VLAConfig, init_policy
from vla_runtime.bench import benchmark

FAMILIES = {
    "kosmos-2": Kosmos2Config.tiny,
    "clip-kosmos-2": ClipKosmos2Config.tiny,
    "paligemma (Gemma 2)": lambda: PaliGemmaConfig.tiny("gemma2"),
    "smolvlm": SmolVLMConfig.tiny,
    "llava": LlavaConfig.tiny,
    "qwen2_5_vl": Qwen2_5_VLConfig.tiny,
    "idefics": IdeficsConfig.tiny,
}
STRUCTURES = [("policy_head", "lstm"), ("interleaved", "mlp")]
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


def _export(backbone, structure, head, tok_dir, out) -> str:
    cfg = VLAConfig(
        backbone=backbone,
        structure=structure,
        head=head,
        window_size=4,
        action_chunk=2,
        action_dim=2,
        has_gripper=False,
        head_hidden_size=32,
        head_layers=1,
        head_heads=2,
    )
    shapes = jax.eval_shape(lambda: init_policy(cfg, 0))
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: (rng.standard_normal(s.shape) * 0.2).astype(np.float32), shapes)
    export_policy(cfg, params, STATS, tok_dir, out, "float32", instruction_length=12)
    return out


def main(argv=None) -> int:
    args = common.parser("backbone_latency", __doc__.splitlines()[0]).parse_args(argv)
    torch.set_num_threads(1)
    steps = 6 if args.quick else 30
    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        train_tokenizer(["go left around the obstacle", "go right"], f"{tmp}/tok", vocab_size=200)
        for name, make in FAMILIES.items():
            for structure, head in STRUCTURES[:1] if args.quick else STRUCTURES:
                out = _export(make(), structure, head, f"{tmp}/tok", f"{tmp}/{len(results)}")
                r = benchmark(out, steps=steps, camera=(48, 64))
                r = {"family": name, **{k: v for k, v in r.items() if k != "export"}}
                results.append(r)
                rows.append(
                    (
                        name,
                        structure,
                        r["incremental_ms"],
                        r["full_rerun_ms"],
                        r["incremental_ms_first_window"],
                        r["one_frame_backbone_ms"],
                        r["incremental_over_one_frame"],
                    )
                )
    common.print_table(
        "runtime step per backbone (tiny, float32, CPU, 1 thread)",
        ["family", "structure", "incr ms", "full ms", "first-window ms", "1 frame ms", "incr / frame"],
        rows,
    )
    common.write_result(
        args.out, {"benchmark": "backbone_latency", "machine": common.machine_info(), "results": results}
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
