"""Action heads: features of the action token(s) -> an action chunk per step.

Every continuous head maps ``features [B, T, D]`` (the LM hidden state at each
step's action token) and ``valid [B, T]`` (false for history frames before the
episode start) to

    {"action": f32 [B, T, C, A], "gripper_logits": f32 [B, T, C]  (only with a gripper)}

The last layer of every head is `ActionReadout`: one Dense to ``C * A`` values
per step, reshaped to ``[C, A]``; arm dims go through ``tanh`` (actions are
normalised to [-1, 1], as RoboVLMs' MLPTanhHead) and, with a gripper, the last
dim is a logit whose sigmoid is the gripper opening reported in "action".

Heads (RoboVLMs names in brackets):

- `MLPHead` [MLPTanhHead]: per step; with ``history > 1`` the input at step t is
  the concatenation of the features of steps t-history+1 .. t (newest last,
  zeros before the window / for invalid steps): a causal, fixed-size fusion.
- `LSTMHead` [LSTMDecoder]: input Dense, ``layers`` stacked LSTM cells over T,
  readout MLP on the top hidden state. Invalid steps leave the carry unchanged,
  so a window that starts before the episode gives the same result as running
  from the episode start; `initial_carry` + `step` run it one frame at a time
  (what the robot runtime does) and give exactly the outputs of `__call__`.
- `GPTHead` [GPT2 policy head]: input Dense + learned slot positions (window slot
  0..T-1, newest frame right-aligned at slot T-1), pre-LN causal transformer
  blocks over T (GPT-2 layout, exact-erf GELU), invalid steps masked out as
  attention keys (each step always sees itself, so no attention row is empty).
- `DiscreteTokenHead`: the LM head restricted to the rows of the action tokens
  (the last ``num_bins`` vocabulary entries, see `vla_jax.actions`).

Heads compute in float32: they are small and their outputs feed the losses.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


class ActionReadout(nn.Module):
    """Dense -> [..., C, A]; tanh on arm dims, sigmoid(logit) on the gripper."""

    action_chunk: int
    action_dim: int
    has_gripper: bool
    tanh_actions: bool = True

    @nn.compact
    def __call__(self, x):
        raw = nn.Dense(self.action_chunk * self.action_dim, name="out")(x)
        raw = raw.reshape(*x.shape[:-1], self.action_chunk, self.action_dim)
        n_arm = self.action_dim - 1 if self.has_gripper else self.action_dim
        arm = raw[..., :n_arm]
        if self.tanh_actions:
            arm = jnp.tanh(arm)
        if not self.has_gripper:
            return {"action": arm}
        logits = raw[..., n_arm]
        return {"action": jnp.concatenate([arm, nn.sigmoid(logits)[..., None]], -1), "gripper_logits": logits}


class MLP(nn.Module):
    """``layers`` x (Dense -> ReLU -> dropout)."""

    hidden: int
    layers: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, deterministic=True):
        for i in range(self.layers):
            x = nn.relu(nn.Dense(self.hidden, name=f"dense_{i}")(x))
            x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
        return x


def _mask_features(features, valid):
    return jnp.where(valid[..., None], features, 0.0).astype(jnp.float32)


class MLPHead(nn.Module):
    action_chunk: int
    action_dim: int
    has_gripper: bool
    hidden: int = 1024
    layers: int = 2
    history: int = 1
    dropout: float = 0.0
    tanh_actions: bool = True

    @nn.compact
    def __call__(self, features, valid, deterministic=True):
        x = _mask_features(features, valid)
        if self.history > 1:
            # Step t sees steps t-h+1..t; shifting right by k with zero fill keeps it causal.
            shifted = [jnp.pad(x, ((0, 0), (k, 0), (0, 0)))[:, : x.shape[1]] for k in range(self.history)]
            x = jnp.concatenate(shifted[::-1], axis=-1)
        x = MLP(self.hidden, self.layers, self.dropout, name="mlp")(x, deterministic)
        return ActionReadout(self.action_chunk, self.action_dim, self.has_gripper, self.tanh_actions, name="readout")(x)


class _LSTMStack(nn.Module):
    """One time step through ``layers`` LSTM cells; holds the carry where ``valid`` is false."""

    hidden: int
    layers: int

    @nn.compact
    def __call__(self, carry, inputs):
        x, valid = inputs
        new_carry = []
        for i in range(self.layers):
            layer_carry, x = nn.LSTMCell(self.hidden, name=f"layer_{i}")(carry[i], x)
            new_carry.append(jax.tree.map(lambda n, o: jnp.where(valid[:, None], n, o), layer_carry, carry[i]))
        return tuple(new_carry), x


class LSTMHead(nn.Module):
    action_chunk: int
    action_dim: int
    has_gripper: bool
    hidden: int = 1024
    layers: int = 4
    dropout: float = 0.0
    tanh_actions: bool = True

    def setup(self):
        self.input_proj = nn.Dense(self.hidden)
        self.lstm = _LSTMStack(self.hidden, self.layers)
        self.readout_mlp = MLP(self.hidden, 1, self.dropout)
        self.readout = ActionReadout(self.action_chunk, self.action_dim, self.has_gripper, self.tanh_actions)

    def initial_carry(self, batch_size: int):
        """Zero (c, h) for every layer: the state at the episode start."""
        zeros = jnp.zeros((batch_size, self.hidden), jnp.float32)
        return tuple((zeros, zeros) for _ in range(self.layers))

    def _out(self, h, deterministic):
        return self.readout(self.readout_mlp(h, deterministic))

    def step(self, carry, feature, valid, deterministic=True):
        """One frame: feature [B, D], valid [B] -> (carry, {"action": [B, C, A], ...})."""
        x = self.input_proj(_mask_features(feature, valid))
        carry, h = self.lstm(carry, (x, valid))
        return carry, self._out(h, deterministic)

    def __call__(self, features, valid, deterministic=True):
        x = self.input_proj(_mask_features(features, valid))
        scan = nn.scan(
            lambda mdl, c, xs: mdl(c, xs),
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=1,
            out_axes=1,
        )
        _, h = scan(self.lstm, self.initial_carry(features.shape[0]), (x, valid))
        return self._out(h, deterministic)


class _Block(nn.Module):
    heads: int
    dropout: float

    @nn.compact
    def __call__(self, x, mask, deterministic):
        y = nn.MultiHeadDotProductAttention(self.heads, dropout_rate=self.dropout, name="attn")(
            nn.LayerNorm(name="ln_1")(x), mask=mask, deterministic=deterministic
        )
        x = x + y
        d = x.shape[-1]
        y = nn.Dense(4 * d, name="fc")(nn.LayerNorm(name="ln_2")(x))
        y = nn.Dense(d, name="proj")(nn.gelu(y, approximate=False))
        return x + nn.Dropout(self.dropout)(y, deterministic=deterministic)


class GPTHead(nn.Module):
    action_chunk: int
    action_dim: int
    has_gripper: bool
    window_size: int
    hidden: int = 512
    layers: int = 4
    heads: int = 8
    dropout: float = 0.0
    tanh_actions: bool = True

    @nn.compact
    def __call__(self, features, valid, deterministic=True):
        t = features.shape[1]
        if t > self.window_size:
            raise ValueError(f"GPTHead: {t} steps exceed window_size={self.window_size}")
        x = nn.Dense(self.hidden, name="input_proj")(_mask_features(features, valid))
        pos = self.param("pos_embedding", nn.initializers.normal(0.02), (self.window_size, self.hidden))
        x = x + pos[self.window_size - t :]
        # Keys: earlier valid steps, plus the step itself so an invalid step's row is never
        # fully masked (torch SDPA would return NaN there; its output is discarded anyway).
        eye = jnp.eye(t, dtype=bool)[None, None]
        keys = nn.make_attention_mask(jnp.ones_like(valid), valid, dtype=bool)
        mask = nn.make_causal_mask(valid, dtype=bool) & (keys | eye)
        for i in range(self.layers):
            x = _Block(self.heads, self.dropout, name=f"block_{i}")(x, mask, deterministic)
        x = nn.LayerNorm(name="ln_f")(x)
        return ActionReadout(self.action_chunk, self.action_dim, self.has_gripper, self.tanh_actions, name="readout")(x)


class DiscreteTokenHead(nn.Module):
    """LM hidden -> logits over the action bins, via the (tied) LM head's last rows.

    ``lm_logits`` is the backbone's LM head (hidden [..., D] -> [..., vocab]); the
    bins are its last ``num_bins`` columns, so no new parameters are introduced.
    """

    num_bins: int

    def __call__(self, hidden, lm_logits: Callable):
        return lm_logits(hidden)[..., -self.num_bins :].astype(jnp.float32)
