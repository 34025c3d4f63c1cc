"""Weighted interleaving of RLDS datasets into one frame-level tf.data pipeline.

Per dataset: trajectories -> filters -> window/chunk -> subsample -> normalise
(with that dataset's statistics) -> pad actions to the mixture's A -> frames.
Then: sample by weight -> shuffle buffer (of still-encoded frames, so RAM holds
kilobytes per frame, not a decoded window) -> decode/resize/augment -> batch.

Parallelism: `read_threads` / `transform_threads` are budgets for the whole
mixture, split across datasets by weight (each gets >= 1), like Octo's loader;
None means tf.data AUTOTUNE. `ram_budget_gb` bounds tf.data's autotuned
buffers so a TPU host with many datasets does not run out of memory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from data_pipelines import frame_transforms as ft
from data_pipelines import registry, rlds, statistics
from data_pipelines import traj_transforms as tt
from data_pipelines.errors import BadDataCounter, DataError

log = logging.getLogger("data_pipelines")


def _thread_split(total: int | None, weights: Sequence[float]) -> list[int | None]:
    if total is None:
        return [None] * len(weights)
    s = sum(weights)
    return [max(1, int(round(total * w / s))) for w in weights]


def counting_filter(predicate, counter: BadDataCounter, reason: str, name: str):
    """A tf.data filter that logs and counts every episode it drops (filtering is never silent)."""
    import tensorflow as tf

    def record(episode_id):
        counter.record(f"dataset {name}: episode {episode_id.numpy().decode()} filtered out", reason=reason)
        return False

    def wrapped(traj):
        return tf.cond(
            predicate(traj), lambda: tf.constant(True), lambda: tf.py_function(record, [traj["episode_id"]], tf.bool)
        )

    return wrapped


def decode_in_trajectory(cfg: dict) -> bool:
    """Where frames are decoded: once per trajectory (before windowing; the shuffle buffer then holds decoded
    frames) or once per sample after the shuffle (T times per frame, but the buffer holds only JPEG bytes).

    "auto" decodes per trajectory when the decoded buffer - shuffle_buffer x T frames at the output size -
    takes at most a quarter of `ram_budget_gb` and no subsampling would throw decoded frames away: so
    small-image training (48 px, T = 2: 3.5 MB for 256 samples) decodes each frame once, pre-training
    (224 px, T = 16, 100k samples: 240 GB) keeps encoded frames in RAM. Both give identical pixels.
    """
    mode = cfg.get("decode_frames", "auto")
    if mode not in ("auto", "trajectory", "sample"):
        raise DataError(f"data config decode_frames={mode!r}: choose 'auto', 'trajectory' or 'sample'")
    if mode != "auto":
        return mode == "trajectory"
    decoded = int(cfg["shuffle_buffer"] or 1) * int(cfg["window_size"]) * int(cfg["image_size"]) ** 2 * 3
    return not cfg.get("max_steps_per_episode") and decoded <= float(cfg["ram_budget_gb"]) * (1 << 30) / 4


def _decode_frames(images, size: int, resize_mode: str, jpeg_scaled: bool):
    import tensorflow as tf

    return tf.map_fn(
        lambda im: ft.decode_and_resize_tf(im, size, resize_mode, jpeg_scaled),
        images,
        fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
    )


def frame_dataset(
    spec,
    stats,
    cfg,
    *,
    dataset_id: int,
    train: bool,
    seed: int,
    process_index: int,
    process_count: int,
    counter: BadDataCounter,
    reads: int | None,
    calls: int | None,
):
    """Frames of one dataset with windows, chunks, normalised padded actions and masks (images encoded, or
    decoded already when `decode_in_trajectory(cfg)`)."""
    import tensorflow as tf
    import tensorflow.experimental.numpy as tnp  # pyright: ignore[reportMissingImports]

    A = int(cfg["action_dim"])
    if spec.action_dim > A:
        raise DataError(
            f"data config action_dim={A} but dataset {spec.name} has {spec.action_dim} action dims; "
            f"set action_dim >= {spec.action_dim}"
        )
    ds, _ = rlds.trajectory_dataset(
        spec,
        cfg["data_dir"],
        train=train,
        process_index=process_index,
        process_count=process_count,
        seed=seed,
        num_parallel_reads=reads,
        num_parallel_calls=calls,
        skip_bad_episodes=cfg["skip_bad_episodes"],
        counter=counter,
        min_episode_length=cfg["min_episode_length"],
        split=cfg.get("split"),
    )
    if cfg["filter_no_instruction"] and spec.language_key is not None and not spec.fixed_instruction:
        ds = ds.filter(counting_filter(tt.has_instruction_tf, counter, "no_instruction", spec.name))
    if cfg.get("max_abs_action"):
        limit = float(cfg["max_abs_action"])
        ds = ds.filter(
            counting_filter(lambda t: tt.actions_within_tf(t, limit), counter, f"action_above_{limit:g}", spec.name)
        )
    mode = cfg["normalization"]
    dim_mask = tf.constant([i < spec.action_dim for i in range(A)])

    early = decode_in_trajectory(cfg)
    size, resize_mode, jpeg_scaled = int(cfg["image_size"]), cfg["resize_mode"], bool(cfg["jpeg_scaled_decode"])

    def to_samples(traj, index):
        n = tf.shape(traj["action"])[0]
        traj = dict(traj, action=statistics.normalize(traj["action"], stats, mode, xp=tnp))
        if early:
            traj["image"] = _decode_frames(traj["image"], size, resize_mode, jpeg_scaled)
        traj = tt.chunk_trajectory_tf(traj, int(cfg["window_size"]), int(cfg["action_chunk"]), obs_keys=("image",))
        traj["action"] = tf.pad(traj["action"], [[0, 0], [0, 0], [0, 0], [0, A - spec.action_dim]])
        traj["action_dim_mask"] = tf.tile(dim_mask[None], tf.stack([n, 1]))
        traj["dataset_id"] = tf.fill([n], tf.constant(dataset_id, tf.int32))
        traj["episode_id"] = tf.fill([n], traj["episode_id"])
        # A stateless draw per (seed, trajectory position): new each epoch, and restored exactly on resume.
        return tt.subsample_tf(traj, cfg.get("max_steps_per_episode"), seed=tf.stack([tf.cast(seed, tf.int64), index]))

    ds = tf.data.Dataset.zip(ds.repeat() if train else ds, tf.data.Dataset.counter())
    ds = ds.map(to_samples, num_parallel_calls=calls or tf.data.AUTOTUNE, deterministic=True)
    return ds.flat_map(tf.data.Dataset.from_tensor_slices)  # pyright: ignore[reportArgumentType]  (tf stubs)


def decode_window(
    sample, image_size: int, resize_mode: str, jpeg_scaled: bool, augment_cfg: ft.AugmentConfig | None, seed_pair
):
    """Decode/resize the T frames of a sample (unless decoded already); augment; zero frames before the start."""
    import tensorflow as tf

    images = sample["image"]
    if images.dtype == tf.string:
        images = _decode_frames(images, image_size, resize_mode, jpeg_scaled)
    if augment_cfg is not None:
        images = ft.augment_tf(images, seed_pair, augment_cfg)
    images = images * tf.cast(sample["image_mask"], tf.uint8)[:, None, None, None]
    return dict(sample, image=images)


def make_mixture_dataset(
    cfg: dict,
    *,
    batch_size: int,
    train: bool,
    seed: int,
    process_index: int,
    process_count: int,
    counter: BadDataCounter,
    skip_samples: int = 0,
):
    """-> (batched tf.data.Dataset, statistics dict, mixture entries with final weights).

    `skip_samples`: resume by replay - the first samples are drawn (same shuffle, same RNG
    states) but dropped before they are decoded, so what follows is exactly what an
    uninterrupted pipeline yields next.
    """
    import tensorflow as tf

    entries = registry.get_mixture(cfg["mixture"])
    specs = [registry.get_spec(n) for n, _ in entries]
    stats = {
        s.name: rlds.dataset_statistics(
            s, cfg["data_dir"], cfg.get("stats_cache_dir"), skip_bad_episodes=cfg["skip_bad_episodes"]
        )
        for s in specs
    }
    weights = [w for _, w in entries]
    if cfg["balance_weights"]:
        missing = [s.name for s in specs if stats[s.name].get("num_transitions") is None]
        if missing:  # a declared statistics file without counts
            raise DataError(f"balance_weights needs num_transitions in the statistics of {missing}; add it to the file")
        weights = registry.balance_weights(entries, [stats[s.name]["num_transitions"] for s in specs])
    total = sum(weights)
    weights = [w / total for w in weights]
    reads = _thread_split(cfg.get("read_threads"), weights)
    calls = _thread_split(cfg.get("transform_threads"), weights)
    datasets = [
        frame_dataset(
            s,
            stats[s.name],
            cfg,
            dataset_id=i,
            train=train,
            seed=seed + i,
            process_index=process_index,
            process_count=process_count,
            counter=counter,
            reads=reads[i],
            calls=calls[i],
        )
        for i, s in enumerate(specs)
    ]
    ds = (
        datasets[0]
        if len(datasets) == 1
        else tf.data.Dataset.sample_from_datasets(datasets, weights, seed=seed, stop_on_empty_dataset=False)
    )
    if train and cfg["shuffle_buffer"]:
        ds = ds.shuffle(int(cfg["shuffle_buffer"]), seed=seed)
    aug = ft.AugmentConfig.from_dict(cfg.get("augment_kwargs")) if (train and cfg["augment"]) else None
    size, resize_mode, jpeg_scaled = int(cfg["image_size"]), cfg["resize_mode"], bool(cfg["jpeg_scaled_decode"])
    # Per-sample stateless seeds: augmentation is a pure function of (seed, sample position).
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.counter())
    if skip_samples:
        ds = ds.skip(int(skip_samples))
    ds = ds.map(
        lambda s, i: decode_window(s, size, resize_mode, jpeg_scaled, aug, tf.stack([tf.cast(seed, tf.int64), i])),
        num_parallel_calls=cfg.get("transform_threads") or tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.batch(batch_size, drop_remainder=train)
    options = tf.data.Options()
    options.deterministic = True
    # The bad-data py_functions only raise or count; they do not decide what comes next, so an iterator
    # checkpoint may ignore them (the default policy refuses to save a pipeline that has them).
    options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
    options.autotune.ram_budget = int(float(cfg["ram_budget_gb"]) * (1 << 30))
    ds = ds.with_options(options).prefetch(2)
    stats_out = {s.name: {**stats[s.name], "normalization": cfg["normalization"]} for s in specs}
    return ds, stats_out, [(s.name, w) for s, w in zip(specs, weights)]
