"""`make_loader`: the one entry point the trainer calls (docs/INTERFACES.md, "Data"), and the data config.

The loaders are siblings behind one protocol (`data_pipelines.batch.Loader`):
`rlds_loader.RLDSLoader` (kind "rlds_mixture"), `grain_loader.MobileGrainLoader`
(kind "mobile_grain") and, for generated data, `synthetic.SyntheticLoader`.

    loader = make_loader(data_config, tokenizer=tok, global_batch_size=256,
                         process_index=jax.process_index(), process_count=jax.process_count(), seed=0)
    for host_batch in loader: ...      # host-local numpy dict, leading dim global_batch_size // process_count
    loader.get_state() / loader.set_state(state)   # JSON-serialisable; bit-exact resume (see RLDSLoader)
    loader.statistics                  # {dataset: {"action": {mean,std,min,max,q01,q99,mask}, "normalization": mode}}
    loader.bad_episodes                # BadDataCounter: skipped episodes by reason (skip_bad_episodes=True)

Batch keys (docs/design.md): image uint8 [b,T,H,W,3], image_mask bool [b,T], tokens int32 [b,L],
token_mask bool [b,L], action f32 [b,T,C,A], action_mask bool [b,T,C], action_dim_mask bool [b,A],
dataset_id int32 [b].

data_config fields (ml_collections.ConfigDict or dict; unset fields take DEFAULTS). A train config holds
every field but the shapes in `config.data.config` (vla_jax.train.defaults.base_config); the shapes
(SHAPE_KEYS) are derived from `config.model` by vla_jax.train.model.data_shapes.
    kind                "rlds_mixture" (tf.data over RLDS/OXE, pre-training) or
                        "mobile_grain" (grain over the ArrayRecord written by `vla-jax convert-episodes`)
    data_dir            folder holding <dataset>/<version>/ (local or gs://), or a comma-separated search path of them
    mixture             mixture name (oxe_magic_soup, oxe_magic_soup_plus), a registered dataset or alias
                        (bridge_dataset, rt_1, mobile, ...), or a list of [name, weight]; mobile_grain: "mobile" /
                        "mobile_3d" (default: the one whose action dims the converted dataset has)
    dataset_name        mobile_grain: folder name of the converted dataset under data_dir (what
                        `convert-episodes --name` wrote; default: the registry's, mobile_episodes)
    split               override the split (default: the spec's train_split / val_split by `train`)
    window_size         T, history frames per sample (default 1)
    action_chunk        C, future actions per history frame (any C, also C > T; default 1)
    action_dim          A, actions are zero-padded to this many dims (>= every dataset's dims; default 7)
    image_size          output H = W (default 224)
    resize_mode         frame -> image_size x image_size (vla_runtime.policy_io): "resize" stretches (default),
                        "pad" keeps the aspect ratio with black bars, "center_crop" keeps it by cropping; the
                        export carries it to the robot. A converted dataset was resized by convert-episodes
                        and must have been converted with the same mode
    instruction_length  L, instruction tokens incl. BOS/EOS (default 32)
    normalization       "bounds_q99" (default) | "bounds" | "normal" | "none"
    stats_cache_dir     where statistics JSON files are cached (default ~/.cache/vla_jax/stats)
    shuffle_buffer      frames in the shuffle buffer (rlds; default 10000, images still encoded)
    augment             random resized crop + colour jitter, train only (default True)
    augment_kwargs      overrides of frame_transforms.AugmentConfig fields (default {})
    mirror_augment      mobile: flip image, negate lateral/angular velocity, swap left/right, p=0.5 (default False)
    skip_bad_episodes   skip and count bad episodes instead of raising DataError (default False)
    min_episode_length  shorter episodes are bad data (default 1)
    filter_no_instruction  drop episodes with an empty instruction (rlds; default True)
    max_abs_action      drop episodes with a raw |action| above this (rlds; default None = off)
    max_steps_per_episode  subsample at most this many steps per episode (rlds; default None = all)
    balance_weights     multiply mixture weights by transition counts (default False)
    read_threads, transform_threads   tf.data parallelism budgets for the mixture (default None = AUTOTUNE)
    ram_budget_gb       tf.data autotune RAM bound per host (default 32)
    decode_frames       rlds: "auto" (default) | "trajectory" (each frame once, decoded frames in the shuffle
                        buffer) | "sample" (after the shuffle, T times); see mixtures.decode_in_trajectory
    jpeg_scaled_decode  rlds: decode JPEGs at libjpeg's 1/2-1/8 DCT scale that still covers image_size (faster;
                        frames then differ from policy_io's resize of the full frame by resampling noise, more
                        than its one-level tolerance, so off by default; see frame_transforms.decode_tf)
    worker_count        grain worker processes (default 0 = in-process; use 4-16 on a TPU host)
    worker_buffer_size  grain per-worker prefetch (default 2)
    episode_cache       grain: parsed episodes (encoded frames) kept per worker, LRU (default 1024; 0 = off)
"""

from __future__ import annotations

import copy
from typing import Any

from data_pipelines.batch import Loader
from data_pipelines.errors import DataError
from data_pipelines.grain_loader import MobileGrainLoader
from data_pipelines.rlds_loader import RLDSLoader
from vla_runtime.policy_io import RESIZE_MODES

DEFAULTS: dict[str, Any] = {
    "kind": "rlds_mixture",
    "data_dir": None,
    "mixture": None,
    "dataset_name": None,
    "split": None,
    "window_size": 1,
    "action_chunk": 1,
    "action_dim": 7,
    "image_size": 224,
    "resize_mode": "resize",
    "instruction_length": 32,
    "normalization": "bounds_q99",
    "stats_cache_dir": None,
    "shuffle_buffer": 10000,
    "augment": True,
    "augment_kwargs": {},
    "mirror_augment": False,
    "skip_bad_episodes": False,
    "min_episode_length": 1,
    "filter_no_instruction": True,
    "max_abs_action": None,
    "max_steps_per_episode": None,
    "balance_weights": False,
    "read_threads": None,
    "transform_threads": None,
    "ram_budget_gb": 32,
    "decode_frames": "auto",
    "jpeg_scaled_decode": False,
    "worker_count": 0,
    "worker_buffer_size": 2,
    "episode_cache": 1024,
}
# The type of every field whose default is None (so a typed config can hold and override it).
OPTIONAL_TYPES: dict[str, type] = {
    "data_dir": str,
    "mixture": str,
    "dataset_name": str,
    "split": str,
    "stats_cache_dir": str,
    "max_abs_action": float,
    "max_steps_per_episode": int,
    "read_threads": int,
    "transform_threads": int,
}
# Fields that must agree with the model; a train config derives them (vla_jax.train.model.data_shapes).
SHAPE_KEYS = ("window_size", "action_chunk", "action_dim", "image_size", "instruction_length")


def resolve_config(data_config) -> dict:
    """ConfigDict/dict -> plain dict with defaults; unknown keys are an error (typos must not be ignored)."""
    cfg = data_config.to_dict() if hasattr(data_config, "to_dict") else dict(data_config or {})
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise DataError(
            f"data config has unknown field(s) {unknown}; valid fields: {sorted(DEFAULTS)} "
            "(see data_pipelines/loader.py)"
        )
    out = copy.deepcopy(DEFAULTS)
    out.update({k: v for k, v in cfg.items()})
    for key in OPTIONAL_TYPES:  # "" in a config means unset, as None does
        if out[key] == "":
            out[key] = None
    if out["kind"] not in ("rlds_mixture", "mobile_grain"):
        raise DataError(f"data config kind={out['kind']!r}: choose 'rlds_mixture' or 'mobile_grain'")
    if not out["data_dir"]:
        raise DataError("data config data_dir is empty; set it to the folder holding the tfds datasets")
    if out["mixture"] is None and out["kind"] == "rlds_mixture":
        raise DataError("data config mixture is empty; set a mixture name such as 'oxe_magic_soup' or 'bridge_dataset'")
    if out["resize_mode"] not in RESIZE_MODES:
        raise DataError(f"data config resize_mode={out['resize_mode']!r}: choose one of {', '.join(RESIZE_MODES)}")
    for key in SHAPE_KEYS:
        if int(out[key]) < 1:
            raise DataError(f"data config {key}={out[key]}: must be >= 1")
    return out


LOADERS = {"rlds_mixture": RLDSLoader, "mobile_grain": MobileGrainLoader}


def make_loader(
    data_config,
    *,
    tokenizer,
    global_batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
    seed: int = 0,
    train: bool = True,
    state_dir=None,
    state_keep: int = 3,
) -> Loader:
    """Build the loader named by `data_config.kind` (see the module docstring for the fields).

    `state_dir`: where the rlds loader checkpoints its tf.data iterator for exact resume
    (the trainer passes `<workdir>/data_iterators`; grain's state is small JSON already).
    """
    cfg = resolve_config(data_config)
    resume = dict(state_dir=state_dir, state_keep=state_keep) if cfg["kind"] == "rlds_mixture" else {}
    return LOADERS[cfg["kind"]](
        cfg,
        tokenizer=tokenizer,
        global_batch_size=global_batch_size,
        process_index=process_index,
        process_count=process_count,
        seed=seed,
        train=train,
        **resume,
    )
