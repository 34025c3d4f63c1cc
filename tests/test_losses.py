"""Losses: hand-computed values, masks really remove entries, discrete cross-entropy."""

import jax
import numpy as np
import pytest

from vla_jax.losses import vla_loss
from vla_jax.models.kosmos2 import Kosmos2Config
from vla_jax.vla import VLAConfig

B, T, C = 2, 3, 2


def _cfg(**kw):
    base = dict(
        backbone=Kosmos2Config.tiny(text=dict(vocab_size=300)),
        structure="policy_head",
        head="lstm",
        window_size=T,
        action_chunk=C,
        action_dim=3,
        has_gripper=True,
    )
    base.update(kw)
    return VLAConfig(**base)


def _batch(a=3, seed=0):
    rng = np.random.default_rng(seed)
    action = rng.uniform(-1, 1, (B, T, C, a)).astype(np.float32)
    action[..., -1] = rng.integers(0, 2, (B, T, C))
    action_mask = np.ones((B, T, C), bool)
    action_mask[0, 2, 1] = False  # past the episode end
    image_mask = np.ones((B, T), bool)
    image_mask[1, 0] = False  # before the episode start
    dim_mask = np.ones((B, a), bool)
    dim_mask[1, 1] = False  # a padded dim of sample 1's embodiment
    return {"action": action, "action_mask": action_mask, "image_mask": image_mask, "action_dim_mask": dim_mask}


def _outputs(seed=1, a=3):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(B, T, C)).astype(np.float32) * 2
    arm = rng.uniform(-1, 1, (B, T, C, a - 1)).astype(np.float32)
    return {"action": np.concatenate([arm, jax.nn.sigmoid(logits)[..., None]], -1), "gripper_logits": logits}


def _numpy_reference(cfg, out, batch):
    valid = batch["action_mask"] & batch["image_mask"][:, :, None]
    mask = valid[..., None] & batch["action_dim_mask"][:, None, None, :]
    d = out["action"][..., :2] - batch["action"][..., :2]
    if cfg.loss_type == "huber":
        per = np.where(np.abs(d) <= 1.0, 0.5 * d**2, np.abs(d) - 0.5)
    else:
        per = d**2
    arm = per[mask[..., :2]].mean()
    z, y = out["gripper_logits"], batch["action"][..., -1]
    bce = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    grip = bce[mask[..., -1]].mean()
    return arm + cfg.gripper_loss_ratio * grip, arm, grip


@pytest.mark.parametrize("loss_type", ["huber", "mse"])
def test_continuous_loss_matches_hand_computation(loss_type):
    cfg = _cfg(loss_type=loss_type, gripper_loss_ratio=0.01)
    batch, out = _batch(), _outputs()
    loss, metrics = jax.jit(lambda o, b: vla_loss(cfg, o, b))(out, batch)
    ref, arm, grip = _numpy_reference(cfg, out, batch)
    np.testing.assert_allclose(float(loss), ref, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["arm_loss"]), arm, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["gripper_loss"]), grip, rtol=1e-5)
    assert 0.0 <= float(metrics["gripper_acc"]) <= 1.0
    # Sample 1 dim 1 is padded: its abs error averages over sample 0 only.
    valid0 = batch["action_mask"][0] & batch["image_mask"][0][:, None]
    err = np.abs(out["action"][0, ..., 1] - batch["action"][0, ..., 1])[valid0].mean()
    np.testing.assert_allclose(float(metrics["abs_error_dim1"]), err, rtol=1e-5)


def test_masked_entries_do_not_count_and_unmasked_do():
    cfg = _cfg()
    batch, out = _batch(), _outputs()
    loss_fn = jax.jit(lambda o, b: vla_loss(cfg, o, b)[0])
    base = float(loss_fn(out, batch))
    for where in [(0, 2, 1, slice(None)), (1, 0, slice(None), slice(None)), (1, slice(None), slice(None), 1)]:
        b2 = {k: v.copy() for k, v in batch.items()}
        b2["action"][where] += 5.0  # masked: past end / before start / padded dim
        assert float(loss_fn(out, b2)) == pytest.approx(base, abs=1e-7)
    b3 = {k: v.copy() for k, v in batch.items()}
    b3["action"][0, 0, 0, 0] += 0.5
    assert abs(float(loss_fn(out, b3)) - base) > 1e-4


def test_gripper_ratio_and_no_gripper_space():
    batch, out = _batch(), _outputs()
    l1 = float(vla_loss(_cfg(gripper_loss_ratio=0.0), out, batch)[0])
    l2 = float(vla_loss(_cfg(gripper_loss_ratio=1.0), out, batch)[0])
    _, arm, grip = _numpy_reference(_cfg(), out, batch)
    np.testing.assert_allclose([l1, l2], [arm, arm + grip], rtol=1e-5)
    # A 2-D mobile action space: no gripper, both dims regressed.
    cfg2 = _cfg(action_dim=2, has_gripper=False)
    b2 = _batch(a=2)
    loss, metrics = vla_loss(cfg2, {"action": np.zeros((B, T, C, 2), np.float32)}, b2)
    assert "gripper_loss" not in metrics
    mask = (b2["action_mask"] & b2["image_mask"][:, :, None])[..., None] & b2["action_dim_mask"][:, None, None]
    d = b2["action"]
    np.testing.assert_allclose(
        float(loss), np.where(np.abs(d) <= 1, 0.5 * d**2, np.abs(d) - 0.5)[mask].mean(), rtol=1e-5
    )


def test_all_masked_gives_zero_not_nan():
    batch, out = _batch(), _outputs()
    batch["action_mask"][:] = False
    loss, metrics = vla_loss(_cfg(), out, batch)
    assert float(loss) == 0.0 and all(np.isfinite(float(v)) for v in metrics.values())


def test_discrete_cross_entropy_and_masks():
    cfg = _cfg(structure="one_step_discrete", head="discrete", num_bins=16)
    batch = _batch()
    tok = cfg.action_tokenizer
    labels = tok.to_bins(batch["action"])
    logits = np.random.default_rng(3).normal(size=labels.shape + (16,)).astype(np.float32)
    out = {"action": tok.from_bins(logits.argmax(-1)), "action_logits": logits}
    loss, metrics = vla_loss(cfg, out, batch)
    logp = jax.nn.log_softmax(logits)
    ce = -np.take_along_axis(np.asarray(logp), labels[..., None], -1)[..., 0]
    mask = (batch["action_mask"] & batch["image_mask"][:, :, None])[..., None] & batch["action_dim_mask"][:, None, None]
    np.testing.assert_allclose(float(loss), ce[mask].mean(), rtol=1e-5)
    # Perfect logits: loss near zero and token accuracy 1.
    perfect = np.where(np.arange(16) == labels[..., None], 20.0, -20.0).astype(np.float32)
    loss_p, m_p = vla_loss(cfg, {"action": tok.from_bins(labels), "action_logits": perfect}, batch)
    assert float(loss_p) < 1e-6 and float(m_p["token_acc"]) == 1.0
    # Masked entries: wrong logits there change nothing.
    bad = perfect.copy()
    bad[1, 0] = -bad[1, 0]  # frame before the episode start
    assert float(vla_loss(cfg, {"action": out["action"], "action_logits": bad}, batch)[0]) < 1e-6
