"""Action heads: shapes, causality over the window, invalid steps, step-wise LSTM."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vla_jax.heads import DiscreteTokenHead, GPTHead, LSTMHead, MLPHead
from vla_jax.train.step import FAST_COMPILE_OPTIONS as FAST_COMPILE

B, T, D, C, A = 2, 4, 8, 3, 4
# Tiny graphs compiled once each: cheaper XLA optimisation keeps the test fast.


def _heads(has_gripper):
    return {
        "mlp": MLPHead(C, A, has_gripper, hidden=16, layers=2, history=T),
        "lstm": LSTMHead(C, A, has_gripper, hidden=16, layers=2),
        "gpt": GPTHead(C, A, has_gripper, window_size=T, hidden=16, layers=2, heads=2),
    }


def _inputs():
    f = jax.random.normal(jax.random.key(0), (B, T, D))
    valid = jnp.array([[False, True, True, True], [True, True, True, True]])
    return f, valid


@pytest.mark.parametrize("name,has_gripper", [("mlp", True), ("lstm", False), ("gpt", True), ("gpt", False)])
def test_head_shapes_causality_and_invalid_steps(name, has_gripper):
    head = _heads(has_gripper)[name]
    f, valid = _inputs()
    params = head.init(jax.random.key(1), f, valid)
    apply = jax.jit(head.apply, compiler_options=FAST_COMPILE)
    out = apply(params, f, valid)
    assert out["action"].shape == (B, T, C, A)
    arm = out["action"][..., : A - 1] if has_gripper else out["action"]
    assert float(jnp.abs(arm).max()) <= 1.0  # tanh readout
    if has_gripper:
        assert out["gripper_logits"].shape == (B, T, C)
        np.testing.assert_allclose(out["action"][..., -1], jax.nn.sigmoid(out["gripper_logits"]), atol=1e-6)
    else:
        assert "gripper_logits" not in out

    # Causal: changing the last frame changes only the last step.
    f2 = f.at[:, -1].add(1.0)
    out2 = apply(params, f2, valid)
    np.testing.assert_allclose(out2["action"][:, :-1], out["action"][:, :-1], atol=1e-6)
    assert float(jnp.abs(out2["action"][:, -1] - out["action"][:, -1]).max()) > 1e-4

    # An invalid (pre-episode) frame's content does not reach any valid step.
    f3 = f.at[0, 0].set(100.0)
    out3 = apply(params, f3, valid)
    np.testing.assert_allclose(out3["action"][0, 1:], out["action"][0, 1:], atol=1e-6)


def test_lstm_step_api_matches_full_window_and_skips_invalid_steps():
    head = _heads(True)["lstm"]
    f, valid = _inputs()
    params = head.init(jax.random.key(1), f, valid)
    full = head.apply(params, f, valid)
    carry = head.apply(params, B, method=LSTMHead.initial_carry)
    step = jax.jit(lambda c, x, v: head.apply(params, c, x, v, method=LSTMHead.step), compiler_options=FAST_COMPILE)
    for t in range(T):
        carry, out = step(carry, f[:, t], valid[:, t])
        np.testing.assert_allclose(out["action"], full["action"][:, t], atol=1e-5)
    # Starting at the episode start (frame 1 of sample 0) equals the padded window.
    started = head.apply(params, f[:1, 1:], valid[:1, 1:])
    np.testing.assert_allclose(started["action"], full["action"][:1, 1:], atol=1e-5)


def test_mlp_history_one_is_per_step():
    head = MLPHead(C, A, False, hidden=16, layers=1, history=1)
    f, valid = _inputs()
    params = head.init(jax.random.key(1), f, valid)
    out = head.apply(params, f, valid)
    single = head.apply(params, f[:, 2:3], valid[:, 2:3])
    np.testing.assert_allclose(single["action"][:, 0], out["action"][:, 2], atol=1e-6)


def test_discrete_head_uses_last_vocab_rows():
    vocab, bins = 50, 8
    w = jax.random.normal(jax.random.key(3), (D, vocab))
    h = jax.random.normal(jax.random.key(4), (B, 5, D))
    logits = DiscreteTokenHead(bins).apply({}, h, lambda x: x @ w)
    assert logits.shape == (B, 5, bins)
    np.testing.assert_allclose(logits, (h @ w)[..., vocab - bins :], atol=1e-6)
