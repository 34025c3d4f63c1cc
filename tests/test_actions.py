"""Action tokenization: round trips, token-id layout, numpy/jax agreement."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vla_jax import actions as A
from vla_jax.errors import VLAJaxError


@pytest.mark.parametrize("num_bins", [256, 17])
def test_round_trip_within_half_bin(num_bins):
    x = np.random.default_rng(0).uniform(-1, 1, size=(1000, 3)).astype(np.float32)
    x[0] = [-1.0, 0.0, 1.0]  # the edges and the centre
    y = A.decode_bins(A.encode_bins(x, num_bins), num_bins)
    half = A.bin_width(num_bins) / 2
    assert np.max(np.abs(y - x)) <= half + 1e-6
    # Uniform inputs must use (nearly) every bin: a broken floor/clip collapses them.
    assert len(np.unique(A.encode_bins(x, num_bins))) >= 0.9 * num_bins


def test_mu_law_round_trip_in_companded_space_and_finer_near_zero():
    mu = 255.0
    x = np.random.default_rng(1).uniform(-1, 1, size=(2000,)).astype(np.float32)
    y = A.decode_bins(A.encode_bins(x, 256, mu=mu), 256, mu=mu)
    err = np.abs(A.mu_law_encode(y, mu) - A.mu_law_encode(x, mu))
    assert err.max() <= A.bin_width(256) / 2 + 1e-5
    np.testing.assert_allclose(A.mu_law_decode(A.mu_law_encode(x, mu), mu), x, atol=1e-5)
    small = np.abs(x) < 0.01
    # Companding spends bins near zero: small values come back much more precisely.
    assert np.abs(y - x)[small].max() < 0.25 * A.bin_width(256) / 2


def test_token_ids_are_the_last_vocab_entries_and_out_of_range_is_an_error():
    tok = A.ActionTokenizer(vocab_size=1000, num_bins=256)
    ids = tok.encode(np.array([-1.0, 1.0]))
    np.testing.assert_array_equal(ids, [1000 - 256, 999])
    with pytest.raises(VLAJaxError, match="not action tokens"):
        tok.decode(np.array([5]))
    with pytest.raises(VLAJaxError, match="num_bins"):
        A.ActionTokenizer(vocab_size=100, num_bins=256)


def test_gripper_uses_full_bin_range_and_round_trips():
    tok = A.ActionTokenizer(vocab_size=500, num_bins=256, has_gripper=True)
    act = np.array([[0.3, -0.7, 0.0], [0.1, 0.2, 1.0]], np.float32)
    ids = tok.encode(act)
    assert ids[0, 2] == 500 - 256 and ids[1, 2] == 499  # gripper 0 -> first bin, 1 -> last
    back = tok.decode(ids)
    assert np.max(np.abs(back - act)) <= A.bin_width(256) / 2 + 1e-6
    assert 0.0 <= back[:, 2].min() and back[:, 2].max() <= 1.0


def test_numpy_and_jax_agree_under_jit():
    tok = A.ActionTokenizer(vocab_size=300, num_bins=64, mu=20.0, has_gripper=True)
    x = np.random.default_rng(2).uniform(-1.2, 1.2, size=(5, 4)).astype(np.float32)
    x[:, -1] = np.abs(x[:, -1]) % 1
    ids_np = tok.encode(x)
    ids_jx = jax.jit(tok.encode)(jnp.asarray(x))
    assert isinstance(ids_jx, jax.Array)
    np.testing.assert_array_equal(ids_np, np.asarray(ids_jx))
    np.testing.assert_allclose(tok.decode(ids_np), np.asarray(jax.jit(tok.decode)(ids_jx)), atol=1e-6)
