"""Action tokenization shared by the model, the exporter and the torch runtime.

The one-step discrete structure (RT-2 / OpenVLA style, as in RoboVLMs) turns
every normalised action value into one vocabulary token. This file is the single
definition of that mapping; the runtime re-implements `decode` in torch, so it is
kept deliberately small:

1. Clip to ``[low, high]`` (default ``[-1, 1]``: actions arrive normalised).
2. Optional mu-law companding (``mu > 0``): ``y = sign(x) * log1p(mu*|x|) / log1p(mu)``
   on the range scaled to ``[-1, 1]``. It spends more bins near zero, where most
   robot actions live (mobile key-press data is mostly 0 or +-1).
3. Uniform bins: ``num_bins`` equal-width bins over ``[low, high]``;
   ``bin = floor((y - low) / width)`` clipped to ``[0, num_bins - 1]``.
   Decoding returns the bin centre ``low + (bin + 0.5) * width`` (then the inverse
   companding), so a round trip is off by at most half a bin width (in the
   companded space).
4. Token ids: bin ``k`` is token ``vocab_size - num_bins + k``: the bins
   overwrite the LAST ``num_bins`` entries of the vocabulary, whose embeddings
   and LM-head rows are then (re)trained.

Gripper: when the action space has a gripper, its value (last dim) is in
``[0, 1]`` (1 = open, as the data pipeline writes it). It is mapped to
``[-1, 1]`` with ``2g - 1`` before binning so it uses the same bins as the arm
dims, and mapped back after decoding.

Every function works on numpy arrays (export, tests) and on jax arrays (inside
jit), returning the same kind it got.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from vla_jax.errors import VLAJaxError
from vla_runtime.policy_io import gripper_to_signed, signed_to_gripper

DEFAULT_NUM_BINS = 256


def _xp(x):
    """numpy for host arrays, jax.numpy for jax arrays and tracers."""
    return jnp if isinstance(x, jax.Array) else np


def bin_width(num_bins: int, low: float = -1.0, high: float = 1.0) -> float:
    return (high - low) / num_bins


def _to_unit(x, low, high):
    return (x - low) / (high - low) * 2.0 - 1.0


def _from_unit(u, low, high):
    return (u + 1.0) / 2.0 * (high - low) + low


def mu_law_encode(x, mu: float, low: float = -1.0, high: float = 1.0):
    """Compand ``x`` in ``[low, high]``; identity when ``mu == 0``."""
    if mu == 0:
        return x
    xp = _xp(x)
    u = _to_unit(x, low, high)
    y = xp.sign(u) * xp.log1p(mu * xp.abs(u)) / np.log1p(mu)
    return _from_unit(y, low, high)


def mu_law_decode(y, mu: float, low: float = -1.0, high: float = 1.0):
    """Inverse of `mu_law_encode`."""
    if mu == 0:
        return y
    xp = _xp(y)
    u = _to_unit(y, low, high)
    x = xp.sign(u) * xp.expm1(xp.abs(u) * np.log1p(mu)) / mu
    return _from_unit(x, low, high)


def encode_bins(actions, num_bins: int = DEFAULT_NUM_BINS, *, mu: float = 0.0, low: float = -1.0, high: float = 1.0):
    """Continuous actions -> int32 bin indices in ``[0, num_bins - 1]``."""
    xp = _xp(actions)
    x = xp.clip(actions, low, high)
    y = mu_law_encode(x, mu, low, high)
    idx = xp.floor((y - low) / bin_width(num_bins, low, high))
    return xp.clip(idx, 0, num_bins - 1).astype(xp.int32)


def decode_bins(bins, num_bins: int = DEFAULT_NUM_BINS, *, mu: float = 0.0, low: float = -1.0, high: float = 1.0):
    """Bin indices -> float32 bin centres (inverse-companded)."""
    xp = _xp(bins)
    centres = low + (bins.astype(xp.float32) + 0.5) * bin_width(num_bins, low, high)
    return mu_law_decode(centres, mu, low, high).astype(xp.float32)


def action_token_offset(vocab_size: int, num_bins: int) -> int:
    """Token id of bin 0: the bins occupy the last `num_bins` vocabulary ids."""
    if not 0 < num_bins < vocab_size:
        raise VLAJaxError(
            f"action tokenization: num_bins={num_bins} must be in (0, vocab_size={vocab_size}); "
            "lower num_bins in the VLA config"
        )
    return vocab_size - num_bins


def bins_to_token_ids(bins, vocab_size: int, num_bins: int = DEFAULT_NUM_BINS):
    return bins + action_token_offset(vocab_size, num_bins)


def token_ids_to_bins(token_ids, vocab_size: int, num_bins: int = DEFAULT_NUM_BINS):
    """Token ids -> bins. On numpy input, ids outside the action range are an error
    (a decoder that emitted text instead of an action); under jit they are clipped."""
    bins = token_ids - action_token_offset(vocab_size, num_bins)
    xp = _xp(token_ids)
    if xp is np:
        bad = (bins < 0) | (bins >= num_bins)
        if np.any(bad):
            raise VLAJaxError(
                f"action tokenization: token ids {np.unique(np.asarray(token_ids)[bad])[:5].tolist()} are not "
                f"action tokens (expected ids in [{vocab_size - num_bins}, {vocab_size - 1}]); "
                "decode only the tokens the action head produced"
            )
        return bins.astype(np.int32)
    return jnp.clip(bins, 0, num_bins - 1).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class ActionTokenizer:
    """The complete action <-> token mapping of one model (see module docstring).

    `encode` maps normalised actions ``[..., A]`` to token ids ``[..., A]``;
    `decode` maps token ids back. ``has_gripper`` marks the last dim as a gripper in
    ``[0, 1]``.
    """

    vocab_size: int
    num_bins: int = DEFAULT_NUM_BINS
    mu: float = 0.0
    has_gripper: bool = False
    low: float = -1.0
    high: float = 1.0

    def __post_init__(self):
        action_token_offset(self.vocab_size, self.num_bins)
        if self.mu < 0:
            raise VLAJaxError(f"action tokenization: mu-law mu={self.mu} must be >= 0 (0 disables companding)")
        if not self.low < self.high:
            raise VLAJaxError(f"action tokenization: low={self.low} must be < high={self.high}")

    def _signed(self, actions):
        if not self.has_gripper:
            return actions
        xp = _xp(actions)
        return xp.concatenate([actions[..., :-1], gripper_to_signed(actions[..., -1:])], axis=-1)

    def _unsigned(self, values):
        if not self.has_gripper:
            return values
        xp = _xp(values)
        return xp.concatenate([values[..., :-1], signed_to_gripper(values[..., -1:])], axis=-1)

    def to_bins(self, actions):
        return encode_bins(self._signed(actions), self.num_bins, mu=self.mu, low=self.low, high=self.high)

    def from_bins(self, bins):
        return self._unsigned(decode_bins(bins, self.num_bins, mu=self.mu, low=self.low, high=self.high))

    def encode(self, actions):
        return bins_to_token_ids(self.to_bins(actions), self.vocab_size, self.num_bins)

    def decode(self, token_ids):
        return self.from_bins(token_ids_to_bins(token_ids, self.vocab_size, self.num_bins))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
