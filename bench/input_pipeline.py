"""Input pipelines vs the train step: frames/s each side delivers / consumes on this machine.

    python -m bench.input_pipeline            # configs/tiny.py and configs/demo.py (a few minutes)
    python -m bench.input_pipeline --quick    # configs/tiny.py only, small datasets (smoke test)

Pipelines, built through `data_pipelines.loader.make_loader` exactly as the trainer does:

* ``rlds``  (pre-training): tf.data over an RLDS dataset in the BridgeData V2 schema written with a
  tfds writer here, 256x256 JPEG frames like the real Bridge: decode, resize, random resized crop +
  colour jitter, window/chunk, shuffle, batch.
* ``grain`` (post-training): HDF5 episodes in the users' format (`data_pipelines.testing`, h5py)
  -> `convert_episodes.convert` (TFRecord + ArrayRecord) -> grain random access: decode, resize,
  window/chunk, mirror augmentation, batch. The conversion's own frames/s is reported too.

Frames/s = batch * window * batches / s (every history frame is decoded, so it is real work).
The train side is the trainer's jitted step for each config (float32 here; frames/s = batch *
window / median step). Ratio = pipeline / train step; goal >= 3 (the pipeline is never the
bottleneck). Both run single-process here, as `vla-jax train` does by default on this host.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np

from bench import common

BRIDGE_SIZE = 256  # BridgeData V2 frames are 256x256
INSTRUCTIONS = [
    "put the spoon in the pot",
    "Navigate around the obstacle on the left side and reach the target",
    "Navigate around the obstacle on the right side and reach the target",
    "open the drawer",
]


def write_bridge_like(data_dir: str, episodes: int, length: int, size: int = BRIDGE_SIZE, seed: int = 0) -> str:
    """`bridge_dataset` schema (as in data_pipelines.testing) at a realistic frame size, JPEG-encoded."""
    import tensorflow_datasets as tfds

    features = tfds.features.FeaturesDict(
        {
            "steps": tfds.features.Dataset(
                {
                    "observation": {
                        "image_0": tfds.features.Image(shape=(size, size, 3), encoding_format="jpeg"),
                        "state": tfds.features.Tensor(shape=(7,), dtype=np.float32),
                    },
                    "action": tfds.features.Tensor(shape=(7,), dtype=np.float32),
                    "language_instruction": tfds.features.Text(),
                    "is_first": np.bool_,
                    "is_last": np.bool_,
                    "is_terminal": np.bool_,
                    "reward": np.float32,
                }
            )
        }
    )
    rng = np.random.default_rng(seed)
    # Smooth images (a gradient + noise) compress like camera frames; pure noise would not.
    yy, xx = np.mgrid[0:size, 0:size]

    def generate():
        for i in range(episodes):
            base = ((xx + yy * (i + 1)) % 256).astype(np.uint8)
            # Bridge V2's motion is relabelled from the reached state: a random walk gives real deltas.
            state = np.cumsum(rng.uniform(-0.02, 0.02, (length, 7)), axis=0).astype(np.float32)
            steps = []
            for t in range(length):
                img = np.stack([base, np.roll(base, t, 0), np.roll(base, 3 * t, 1)], -1)
                img = np.clip(img.astype(np.int16) + rng.integers(-8, 8, img.shape), 0, 255).astype(np.uint8)
                a = rng.uniform(-0.05, 0.05, 7).astype(np.float32)
                a[6] = float(t % 2)
                steps.append(
                    {
                        "observation": {"image_0": img, "state": state[t]},
                        "action": a,
                        "language_instruction": INSTRUCTIONS[0],
                        "is_first": t == 0,
                        "is_last": t == length - 1,
                        "is_terminal": t == length - 1,
                        "reward": 0.0,
                    }
                )
            yield f"ep{i}", {"steps": steps}

    builder = tfds.dataset_builders.store_as_tfds_dataset(
        name="bridge_dataset",
        version="0.1.0",
        features=features,
        split_datasets={"train": generate()},
        data_dir=data_dir,
        file_format="tfrecord",
        disable_shuffling=True,
    )
    return str(builder.data_dir)


def write_mobile(src: str, out: str, episodes: int, length: int, image_size: int) -> tuple[str, float]:
    """Users'-format HDF5 episodes (480x640 here; theirs are 720p) -> converted dataset; returns (dir, frames/s)."""
    from data_pipelines import convert_episodes
    from data_pipelines.testing import write_mobile_episode

    for i in range(episodes):
        write_mobile_episode(
            src,
            stamp=f"20240501_12{i:04d}",
            side="left" if i % 2 else "right",
            num_frames=length,
            height=480,
            width=640,
            seed=i,
        )
    t0 = time.perf_counter()
    final, _ = convert_episodes.convert(src, out, image_size=image_size, action_dim=2, val_fraction=0.1)
    return final, episodes * length / (time.perf_counter() - t0)


def time_loader(loader, batch: int, window: int, warmup: int, batches: int) -> dict:
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        b = next(it)
    dt = time.perf_counter() - t0
    assert b["image"].shape[:2] == (batch, window), b["image"].shape
    return {
        "batches": batches,
        "seconds": dt,
        "frames_per_s": batch * window * batches / dt,
        "samples_per_s": batch * batches / dt,
    }


class TrainStepTimer:
    """The trainer's jitted step of one config, compiled once, timed in rounds between the pipelines."""

    def __init__(self, config):
        self.step = common.JaxTrainStep(config)
        self.batch = self.step.place(common.random_batch(config))
        self.compile_s = self.step.compile_seconds(self.batch)
        self.frames = config.batch_size * config.model.window_size

    def time(self, steps: int) -> dict:
        times = common.time_calls(lambda: self.step(self.batch)["loss"], warmup=1, iters=steps, sync=common.jax_sync)
        s = common.summary(times)
        return {**s, "frames_per_s": self.frames / s["median_s"]}


def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_input_") as tmp:
        return _run(args, tmp)


def _rounds_summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": len(values)}


def _run(args, tmp: str) -> dict:
    from data_pipelines.loader import make_loader
    from data_pipelines.mixtures import decode_in_trajectory
    from data_pipelines.tokenize import train_tokenizer

    all_configs = {"tiny": "configs/tiny.py", "demo": "configs/demo.py"}
    chosen = ["tiny"] if args.quick else [c.strip() for c in args.configs.split(",")]
    configs = {
        all_configs[c]: (
            common.quick_train_config()
            if args.quick
            else common.load_config_file(str(common.repo_root() / all_configs[c]), "unused")
        )
        for c in chosen
    }
    n_batches = args.batches or (3 if args.quick else 20)
    rounds = 1 if args.quick else args.rounds
    episodes, length = (4, 8) if args.quick else (24, 20)
    tokenizer = train_tokenizer(INSTRUCTIONS * 8, os.path.join(tmp, "tok"), vocab_size=300)
    t0 = time.perf_counter()
    source = 64 if args.quick else BRIDGE_SIZE
    write_bridge_like(os.path.join(tmp, "rlds"), episodes, length, size=source)
    rlds_write_s = time.perf_counter() - t0

    rows, entries = [], {}
    for name, config in configs.items():
        m = config.model
        size, window, chunk, batch = m.backbone.vision.image_size, m.window_size, m.action_chunk, config.batch_size
        common_cfg = dict(
            window_size=window,
            action_chunk=chunk,
            image_size=size,
            instruction_length=config.data.instruction_length,
            stats_cache_dir=os.path.join(tmp, "stats"),
        )
        rlds_cfg = dict(
            kind="rlds_mixture",
            data_dir=os.path.join(tmp, "rlds"),
            mixture="bridge_dataset",
            action_dim=7,
            shuffle_buffer=256,
            augment=True,
            **common_cfg,
        )
        rlds_loader = make_loader(rlds_cfg, tokenizer=tokenizer, global_batch_size=batch, seed=0)
        pipes = {"rlds": rlds_loader}
        if args.compare_decode:  # side by side: the opt-in DCT-scaled JPEG decode, and the pre-2026-12 decode work
            # (full-size JPEG decode once per history slot, after the shuffle)
            for pipe, over in (
                ("rlds_jpeg_scaled", {"jpeg_scaled_decode": True}),
                ("rlds_full_decode_per_sample", {"decode_frames": "sample"}),
            ):
                pipes[pipe] = make_loader({**rlds_cfg, **over}, tokenizer=tokenizer, global_batch_size=batch, seed=0)
        mobile_dir, convert_fps = write_mobile(
            os.path.join(tmp, f"h5_{size}"), os.path.join(tmp, f"mobile_{size}"), episodes, length, size
        )
        grain_loader = make_loader(
            dict(
                kind="mobile_grain",
                data_dir=os.path.join(tmp, f"mobile_{size}"),
                action_dim=2,
                augment=False,
                mirror_augment=True,
                **common_cfg,
            ),
            tokenizer=tokenizer,
            global_batch_size=batch,
            seed=0,
        )
        train = TrainStepTimer(config)
        pipes["grain"] = grain_loader
        per_round = {**{p: [] for p in pipes}, "train_step": [], "load_1min": []}
        for r in range(rounds):  # interleaved, so a load change hits every side alike
            for p, loader in pipes.items():
                per_round[p].append(time_loader(loader, batch, window, warmup=2 if r == 0 else 0, batches=n_batches))
            per_round["train_step"].append(train.time(args.steps or (3 if args.quick else 20)))
            per_round["load_1min"].append(round(os.getloadavg()[0], 2))
        ratios = {
            p: [x["frames_per_s"] / t["frames_per_s"] for x, t in zip(per_round[p], per_round["train_step"])]
            for p in pipes
        }
        fps = {k: _rounds_summary([x["frames_per_s"] for x in per_round[k]]) for k in (*pipes, "train_step")}
        entries[name] = {
            "image_size": size,
            "window": window,
            "chunk": chunk,
            "batch": batch,
            "rlds_decode": "trajectory"
            if decode_in_trajectory({**rlds_cfg, "ram_budget_gb": 32, "shuffle_buffer": 256})
            else "sample",
            "frames_per_s": fps,
            "compile_s": train.compile_s,
            "convert_episodes_frames_per_s": convert_fps,
            "load_1min_per_round": per_round["load_1min"],
            **{f"ratio_{p}": _rounds_summary(ratios[p]) for p in pipes},
        }
        if args.compare_decode:
            for pipe in ("rlds", "rlds_jpeg_scaled"):
                entries[name][f"{pipe}_speedup_over_full_decode"] = _rounds_summary(
                    [
                        a["frames_per_s"] / b["frames_per_s"]
                        for a, b in zip(per_round[pipe], per_round["rlds_full_decode_per_sample"])
                    ]
                )
        for pipe in pipes:
            r = entries[name][f"ratio_{pipe}"]
            rows.append(
                [
                    name,
                    pipe,
                    f"{size}px T={window} B={batch}",
                    fps[pipe]["median"],
                    fps["train_step"]["median"],
                    r["median"],
                    f"{r['min']:.2f}-{r['max']:.2f}",
                ]
            )
        del rlds_loader, grain_loader, pipes
    pretrain = None if args.quick else pretraining_rate(os.path.join(tmp, "rlds"), tmp, tokenizer, n_batches)
    ratios = [e[f"ratio_{p}"]["median"] for e in entries.values() for p in ("rlds", "grain")]
    result = {
        "benchmark": "input_pipeline",
        "quick": bool(args.quick),
        "machine": common.machine_info(),
        "datasets": {
            "rlds": f"bridge_dataset schema, {episodes} episodes x {length} steps, "
            f"{source}px JPEG (written in {rlds_write_s:.1f} s)",
            "grain": f"{episodes} HDF5 episodes x {length} frames at 480x640 (users' format, h5py gzip) "
            "-> convert_episodes (JPEG at the config's size)",
        },
        "configs": entries,
        "pretraining_224px": pretrain,
        "min_ratio": min(ratios),
        "goal": "pipeline frames/s >= 3x the train step's (never the bottleneck); ratios are medians of rounds",
        "goal_met": min(ratios) >= 3.0,
    }
    common.print_table(
        "input pipeline vs train step (frames/s, this machine, one process; median of rounds)",
        ["config", "pipeline", "shape", "pipeline fps", "train-step fps", "ratio", "ratio range"],
        rows,
    )
    if pretrain:
        print(
            f"pre-training resolution (224 px, T=2, B=32, augmentation on, decode per sample as on a pod): "
            f"{pretrain['frames_per_s']:.0f} frames/s on this host"
        )
    return result


def pretraining_rate(data_dir: str, tmp: str, tokenizer, batches: int) -> dict:
    """Host frames/s at pre-training resolution: 256 px JPEG -> 224 px, random crop + colour jitter, decoded
    after the shuffle (what `decode_frames="auto"` picks for configs/pretrain_oxe_kosmos2.py's buffer)."""
    from data_pipelines.loader import make_loader

    loader = make_loader(
        dict(
            kind="rlds_mixture",
            data_dir=data_dir,
            mixture="bridge_dataset",
            action_dim=7,
            shuffle_buffer=256,
            augment=True,
            window_size=2,
            action_chunk=4,
            image_size=224,
            instruction_length=32,
            decode_frames="sample",
            stats_cache_dir=os.path.join(tmp, "stats"),
        ),
        tokenizer=tokenizer,
        global_batch_size=32,
        seed=0,
    )
    out = time_loader(loader, 32, 2, warmup=2, batches=batches)
    return {**out, "load_1min": round(os.getloadavg()[0], 2), "shape": "224px T=2 B=32, augment, decode per sample"}


def main(argv=None) -> int:
    p = common.parser("input_pipeline", __doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=0, help="timed batches per pipeline (default 20; quick 3)")
    p.add_argument("--steps", type=int, default=0, help="timed train steps per config (default 20; quick 3)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of pipeline/step timing (default 3)")
    p.add_argument("--configs", default="tiny,demo", help="comma-separated: tiny, demo (default both)")
    p.add_argument(
        "--compare-decode",
        action="store_true",
        help="also time the rlds pipeline with the opt-in DCT-scaled JPEG decode (jpeg_scaled_decode) and "
        "with full-size JPEG decoding once per history slot (the decode work before per-trajectory "
        "decoding), in the same rounds",
    )
    args = p.parse_args(argv)
    common.write_result(args.out, run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
