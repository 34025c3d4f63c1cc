"""The users' offline, per-frame metrics (docs/mobile_episodes.md), so our numbers compare with theirs.

MAE, RMSE, "success" = |pred - gt| < threshold (0.1 and 0.2) per dimension and
for all dimensions at once, and "direction match" = sign agreement. The users
compute them on actions clamped to [-1, 1] (their key presses of 1.15 become
1.0), so `clamp=1.0` is the default. Sign agreement uses a dead band: a value
within `deadband` of zero counts as "no motion", otherwise any tiny prediction
around a zero target would be a coin flip.
"""

from __future__ import annotations

import numpy as np

from vla_jax.errors import VLAJaxError

THRESHOLDS = (0.1, 0.2)


def _sign(x: np.ndarray, deadband: float) -> np.ndarray:
    return np.where(np.abs(x) < deadband, 0, np.sign(x)).astype(np.int8)


def offline_metrics(
    pred, target, mask=None, *, clamp: float | None = 1.0, deadband: float = 0.1, thresholds=THRESHOLDS, dim_names=None
) -> dict:
    """Metrics over frames.

    pred, target: [N, A] (or any [..., A]) actions in robot units. mask: optional
    bool of the same leading shape ([...]); frames where it is false are ignored.
    Returns a JSON-ready dict with overall and per-dimension values.
    """
    pred = np.asarray(pred, np.float64)
    target = np.asarray(target, np.float64)
    if pred.shape != target.shape or pred.ndim < 2:
        raise VLAJaxError(f"prediction shape {pred.shape} and target shape {target.shape} must match as [..., A]")
    a = pred.shape[-1]
    pred, target = pred.reshape(-1, a), target.reshape(-1, a)
    if mask is not None:
        mask = np.asarray(mask, bool).reshape(-1)
        if mask.shape[0] != pred.shape[0]:
            raise VLAJaxError(f"mask has {mask.shape[0]} frames, predictions have {pred.shape[0]}")
        pred, target = pred[mask], target[mask]
    if pred.shape[0] == 0:
        raise VLAJaxError("no frames to score (empty or fully masked evaluation set)")
    if clamp is not None:
        pred, target = np.clip(pred, -clamp, clamp), np.clip(target, -clamp, clamp)
    names = list(dim_names) if dim_names is not None else [f"dim{i}" for i in range(a)]
    err = pred - target
    out: dict = {
        "frames": int(pred.shape[0]),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "direction_match": float((_sign(pred, deadband) == _sign(target, deadband)).all(axis=1).mean()),
        "per_dim": {},
    }
    for thr in thresholds:
        out[f"success@{thr}"] = float((np.abs(err) < thr).all(axis=1).mean())
    for i, name in enumerate(names):
        e = err[:, i]
        d = {
            "mae": float(np.abs(e).mean()),
            "rmse": float(np.sqrt((e**2).mean())),
            "direction_match": float((_sign(pred[:, i], deadband) == _sign(target[:, i], deadband)).mean()),
        }
        for thr in thresholds:
            d[f"success@{thr}"] = float((np.abs(e) < thr).mean())
        out["per_dim"][name] = d
    return out


def format_metrics(metrics: dict) -> str:
    keys = ["mae", "rmse"] + [k for k in metrics if k.startswith("success@")] + ["direction_match"]
    header = f"{'':<12}" + "".join(f"{k:>16}" for k in keys)
    lines = [header, f"{'all dims':<12}" + "".join(f"{metrics[k]:>16.4f}" for k in keys)]
    for name, d in metrics["per_dim"].items():
        lines.append(f"{name:<12}" + "".join(f"{d[k]:>16.4f}" for k in keys))
    lines.append(f"({metrics['frames']} frames)")
    return "\n".join(lines)
