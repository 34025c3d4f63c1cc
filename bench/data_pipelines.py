"""Frames/s of the two data paths on this machine (tf.data over RLDS, grain over ArrayRecord).

    python -m bench.data_pipelines [--quick] [--out bench/results/data_pipelines.json]

Builds HDF5 episodes in the users' format (18 frames, 240x320 BGR source
frames), converts them with `vla-jax convert-episodes` machinery to 224 px RLDS,
then times host batches (b=32, T=2, C=4, 224 px, augmentation on) through
`make_loader` for kind="rlds_mixture" (TFRecord, tf.data) and "mobile_grain"
(ArrayRecord, grain, in-process and with 2 worker processes). Frames/s counts
image frames delivered (b * T per batch) after a warm-up batch.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time

from bench import common


def _time_loader(cfg, tok, batches: int, batch_size: int) -> dict:
    from data_pipelines.loader import make_loader

    t0 = time.perf_counter()
    loader = make_loader(cfg, tokenizer=tok, global_batch_size=batch_size, seed=0)
    it = iter(loader)
    first = next(it)
    setup = time.perf_counter() - t0
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t
    frames = batches * first["image"].shape[0] * first["image"].shape[1]
    return {
        "frames_per_s": round(frames / dt, 1),
        "batches_per_s": round(batches / dt, 2),
        "setup_s": round(setup, 1),
        "batches": batches,
    }


def main() -> None:
    p = common.parser("data_pipelines", str(__doc__).splitlines()[0])
    args = p.parse_args()
    from absl import flags

    flags.FLAGS.mark_as_parsed()  # grain worker processes read absl flags

    from data_pipelines import testing as dt
    from data_pipelines.convert_episodes import convert
    from data_pipelines.tokenize import ByteTokenizer

    episodes, batches, size = (6, 3, 64) if args.quick else (40, 20, 224)
    tmp = tempfile.mkdtemp(prefix="bench_data_")
    src = os.path.join(tmp, "h5")
    for i in range(episodes):
        dt.write_mobile_episode(
            src,
            stamp=f"202406{i // 28 + 1:02d}_{i % 24:02d}0000",
            side=("left", "right")[i % 2],
            num_frames=18,
            height=240,
            width=320,
            seed=i,
        )
    t = time.perf_counter()
    convert(src, os.path.join(tmp, "rlds"), image_size=size, action_dim=2, val_fraction=0.1)
    convert_s = time.perf_counter() - t
    base = dict(
        data_dir=os.path.join(tmp, "rlds"),
        mixture="mobile",
        window_size=2,
        action_chunk=4,
        action_dim=2,
        image_size=size,
        instruction_length=64,
        stats_cache_dir=os.path.join(tmp, "stats"),
        augment=True,
    )
    tok = ByteTokenizer()
    try:
        results = _run_all(base, tok, batches)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _report(args, episodes, size, convert_s, results)


def _run_all(base, tok, batches) -> dict:
    return {
        "rlds_mixture (tf.data, TFRecord)": _time_loader(
            dict(base, kind="rlds_mixture", shuffle_buffer=1000), tok, batches, 32
        ),
        "mobile_grain (grain, ArrayRecord, in-process)": _time_loader(
            dict(base, kind="mobile_grain"), tok, batches, 32
        ),
        "mobile_grain (grain, 2 workers)": _time_loader(
            dict(base, kind="mobile_grain", worker_count=2), tok, batches, 32
        ),
    }


def _report(args, episodes, size, convert_s, results) -> None:
    out = {
        "machine": common.machine_info({"platform": platform.platform()}),
        "setup": {
            "episodes": episodes,
            "frames_per_episode": 18,
            "image_size": size,
            "batch": 32,
            "T": 2,
            "C": 4,
            "convert_s": round(convert_s, 1),
        },
        "results": results,
    }
    print(f"{'pipeline':50s} {'frames/s':>10s} {'batches/s':>10s}")
    for name, r in results.items():
        print(f"{name:50s} {r['frames_per_s']:10.1f} {r['batches_per_s']:10.2f}")
    common.write_result(args.out, out)
    print(json.dumps(out["setup"]))


if __name__ == "__main__":
    main()
