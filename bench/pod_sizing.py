"""How many frames/s the input pipeline must deliver per TPU host for the full-size pre-training run.

    python -m bench.pod_sizing [--host-frames-per-s X]     # JSON: bench/results/pod_sizing.json

Model: configs/pretrain_oxe_kosmos2.py (full Kosmos-2, LSTM 4x1024 head, window 16, chunk 10,
224 px, 32 instruction tokens, global batch 256). Its analytic train-step FLOPs per frame come
from `bench.flops` (PaLM-style model FLOPs: 2*m*n*k per matmul, x3 for forward+backward,
attention score/value matmuls counted in full; remat not counted). At an assumed MFU of 40%
a chip then trains `0.4 * peak / flops_per_frame` frames per second, and a host must decode
and augment that many times its chips. Peaks are the bf16 figures Google publishes per chip:
TPU v4 275 TFLOP/s (cloud.google.com/tpu/docs/v4), v5e 197 TFLOP/s (cloud.google.com/tpu/docs/v5e).
Slices: v4-32 = 16 chips on 4 hosts (4 chips per host); v5e-256 = 256 chips on 32 hosts
(8 chips per host, ct5lp-hightpu-8t, per the v5e slice-shape table).

`--host-frames-per-s`: what one host's pipeline delivers at 224 px with augmentation on
(`bench.input_pipeline`'s pre-training row, measured on this 2-core machine) for the last columns.
"""

from __future__ import annotations

from bench import common, flops

MFU = 0.40
CHIPS = {  # name: (peak bf16 TFLOP/s per chip, chips per host, chips in the slice, source)
    "TPU v4 (v4-32)": (275.0, 4, 16, "https://cloud.google.com/tpu/docs/v4"),
    "TPU v5e (v5e-256)": (197.0, 8, 256, "https://cloud.google.com/tpu/docs/v5e"),
}


def sizing(host_frames_per_s: float | None) -> dict:
    from vla_jax.train.model import vla_config

    config = common.load_config_file(str(common.repo_root() / "configs/pretrain_oxe_kosmos2.py"), "gs://x,/y")
    vla = vla_config(config)
    count = flops.train_step_flops(vla, config.batch_size, config.data.instruction_length)
    per_frame = count["train_step_total"] / count["frames_per_step"]
    rows = {}
    for name, (peak, per_host, chips, source) in CHIPS.items():
        chip_fps = MFU * peak * 1e12 / per_frame
        host_fps = chip_fps * per_host
        step_s = count["frames_per_step"] / (chip_fps * chips)
        rows[name] = {
            "peak_tflops_bf16": peak,
            "peak_source": source,
            "chips_per_host": per_host,
            "chips": chips,
            "hosts": chips // per_host,
            "chip_frames_per_s": chip_fps,
            "seconds_per_frame_per_chip": 1.0 / chip_fps,
            "global_step_s": step_s,
            "host_frames_per_s_needed": host_fps,
            "slice_frames_per_s_needed": chip_fps * chips,
            "measured_host_frames_per_s": host_frames_per_s,
            "measured_over_needed": host_frames_per_s / host_fps if host_frames_per_s else None,
        }
    return {
        "benchmark": "pod_sizing",
        "machine": common.machine_info(),
        "mfu_assumed": MFU,
        "model": "configs/pretrain_oxe_kosmos2.py",
        "global_batch": config.batch_size,
        "window": vla.window_size,
        "frames_per_step": count["frames_per_step"],
        "tokens_per_frame": count["tokens_per_step"] / count["frames_per_step"],
        "train_flops_per_frame": per_frame,
        "forward_flops_per_step": count["forward"],
        "slices": rows,
    }


def main(argv=None) -> int:
    p = common.parser("pod_sizing", __doc__.splitlines()[0])
    p.add_argument(
        "--host-frames-per-s",
        type=float,
        default=None,
        help="measured pipeline frames/s of one host at 224 px with augmentation (for the comparison)",
    )
    args = p.parse_args(argv)
    result = sizing(args.host_frames_per_s)
    rows = [
        [
            name,
            r["peak_tflops_bf16"],
            result["train_flops_per_frame"] / 1e12,
            r["seconds_per_frame_per_chip"] * 1e3,
            r["global_step_s"],
            r["host_frames_per_s_needed"],
            r["slice_frames_per_s_needed"],
            r["measured_host_frames_per_s"] or "-",
        ]
        for name, r in result["slices"].items()
    ]
    common.print_table(
        f"pre-training input sizing at {MFU:.0%} MFU ({result['model']}, batch {result['global_batch']})",
        [
            "slice",
            "peak TF/s",
            "TFLOP/frame",
            "ms/frame/chip",
            "step s",
            "host fps needed",
            "slice fps needed",
            "host fps measured",
        ],
        rows,
    )
    common.write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
