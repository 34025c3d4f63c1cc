"""Trajectory-level transforms: history window T, action chunk C, subsampling, filters.

The window/chunk index arithmetic is written once per runtime (numpy for grain,
TensorFlow for the RLDS graph) and tested against each other. Both clamp the
gather indices into the episode and return masks instead of failing, so *any*
T and C work at both episode edges - including C > T and C > episode length,
which is exactly where a naive `actions[t:t + C]` loader raises IndexError.

For step t of an episode of length n, history slot k (0..T-1) is frame
s = t - T + 1 + k, valid iff s >= 0 (`image_mask`); its chunk is actions
s .. s + C - 1, each valid iff the slot is valid and the index < n (`action_mask`).
"""

from __future__ import annotations

import numpy as np


def window_indices_np(n: int, t, window: int, chunk: int):
    """numpy: (obs_idx [...,T], image_mask [...,T], act_idx [...,T,C], action_mask [...,T,C]) for step(s) t."""
    t = np.asarray(t)
    obs = t[..., None] + np.arange(-window + 1, 1)
    image_mask = obs >= 0
    act = obs[..., None] + np.arange(chunk)
    action_mask = (act < n) & image_mask[..., None]
    return np.clip(obs, 0, n - 1), image_mask, np.clip(act, 0, n - 1), action_mask


def window_indices_tf(n, window: int, chunk: int):
    """TensorFlow: the same indices for every step 0..n-1 of an episode (leading dim n)."""
    import tensorflow as tf

    t = tf.range(n)
    obs = t[:, None] + tf.range(-window + 1, 1)[None, :]
    image_mask = obs >= 0
    act = obs[:, :, None] + tf.range(chunk)[None, None, :]
    action_mask = tf.logical_and(act < n, image_mask[:, :, None])
    return (tf.clip_by_value(obs, 0, n - 1), image_mask, tf.clip_by_value(act, 0, n - 1), action_mask)


def chunk_trajectory_tf(traj: dict, window: int, chunk: int, obs_keys=("image",)) -> dict:
    """Turn a standardized trajectory into per-step samples with a history window and chunks.

    In:  traj[k] [n, ...] for k in obs_keys, traj["action"] [n, A], other per-step keys [n, ...].
    Out: traj[k] [n, T, ...], "image_mask" [n, T],
         traj["action"] [n, T, C, A], "action_mask" [n, T, C]; other keys unchanged.
    """
    import tensorflow as tf

    n = tf.shape(traj["action"])[0]
    obs_idx, image_mask, act_idx, action_mask = window_indices_tf(n, window, chunk)
    out = dict(traj)
    for k in obs_keys:
        out[k] = tf.gather(traj[k], obs_idx)
    out["image_mask"] = image_mask
    out["action"] = tf.gather(traj["action"], act_idx)
    out["action_mask"] = action_mask
    return out


def subsample_tf(traj: dict, max_length: int | None, seed=0) -> dict:
    """Keep at most `max_length` random steps (order preserved) of a long trajectory.

    Apply after chunking: each kept step carries its own window and chunk, so
    subsampling only thins highly-correlated neighbouring samples. `seed` (an int or a
    stateless [2] seed) fixes the draw: stateless, so a checkpointed pipeline resumes it.
    """
    import tensorflow as tf

    if not max_length:
        return traj
    n = tf.shape(traj["action"])[0]
    seed = tf.cast(seed, tf.int64)
    seed = tf.stack([seed, tf.zeros_like(seed)]) if seed.shape.rank == 0 else seed
    shuffled = tf.random.experimental.stateless_shuffle(tf.range(n), seed=seed)  # pyright: ignore[reportAttributeAccessIssue]
    keep = tf.sort(shuffled[:max_length])
    return tf.nest.map_structure(lambda x: tf.gather(x, keep), traj)


def has_instruction_tf(traj: dict):
    """Filter predicate: the trajectory has a non-empty language instruction."""
    import tensorflow as tf

    return tf.strings.length(tf.strings.strip(traj["language_instruction"][0])) > 0


def actions_within_tf(traj: dict, max_abs: float):
    """Filter predicate: no (un-normalised) action component exceeds `max_abs` (teleop glitches)."""
    import tensorflow as tf

    return tf.reduce_all(tf.abs(traj["action"]) <= max_abs)


def pad_action_dims_np(action: np.ndarray, action_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad the last axis to `action_dim`; returns (padded, dim_mask [action_dim])."""
    a = action.shape[-1]
    if a > action_dim:
        raise ValueError(f"dataset has {a} action dims, more than action_dim={action_dim}")
    pad = [(0, 0)] * (action.ndim - 1) + [(0, action_dim - a)]
    return np.pad(action, pad), np.arange(action_dim) < a
