"""Action heads in torch, mirroring vla_jax/heads.py layer for layer (inference only).

Module names follow the Flax parameter tree (`mlp.dense_0`, `readout.out`,
`lstm.layer_0`, `block_0.attn.query`, ...) so the export mapping is mechanical:
a Flax Dense kernel [in, out] is a torch Linear weight [out, in]; a Flax
LSTMCell's eight gate Denses are one torch LSTMCell (gate order i, f, g, o);
MultiHeadDotProductAttention's [D, heads, head_dim] kernels are plain Linears.
Flax LayerNorm's epsilon is 1e-6 (torch's default is 1e-5), hence `_LN`.

Every continuous head maps features [B, T, D] and valid [B, T] to
{"action": [B, T, C, A], "gripper_logits": [B, T, C] (with a gripper)}.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cast import as_dtype

FLAX_LN_EPS = 1e-6


def _LN(d: int) -> nn.LayerNorm:
    return nn.LayerNorm(d, eps=FLAX_LN_EPS)


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`layer(x)` without `nn.Module.__call__`'s hook machinery (what `Linear.forward` computes, bit for bit): at the
    heads' sizes that dispatch is about half of a Linear's time, and a robot step runs several of them after the
    backbone has pushed the head's code out of the CPU's caches."""
    return F.linear(x, layer.weight, layer.bias)


class ActionReadout(nn.Module):
    def __init__(self, in_dim: int, action_chunk: int, action_dim: int, has_gripper: bool, tanh_actions: bool = True):
        super().__init__()
        self.action_chunk, self.action_dim = action_chunk, action_dim
        self.has_gripper, self.tanh_actions = has_gripper, tanh_actions
        self.out = nn.Linear(in_dim, action_chunk * action_dim)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raw = _linear(self.out, x).reshape(*x.shape[:-1], self.action_chunk, self.action_dim)
        n_arm = self.action_dim - 1 if self.has_gripper else self.action_dim
        arm = raw[..., :n_arm] if self.has_gripper else raw
        if self.tanh_actions:
            arm = torch.tanh(arm)
        if not self.has_gripper:
            return {"action": arm}
        logits = raw[..., n_arm]
        return {"action": torch.cat([arm, torch.sigmoid(logits)[..., None]], -1), "gripper_logits": logits}


class MLP(nn.Module):
    def __init__(self, in_dim: int, hidden: int, layers: int):
        super().__init__()
        for i in range(layers):
            self.add_module(f"dense_{i}", nn.Linear(in_dim if i == 0 else hidden, hidden))
        self.layers = layers

    def forward(self, x):
        for i in range(self.layers):
            x = F.relu(_linear(getattr(self, f"dense_{i}"), x))
        return x


def _mask_features(features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return as_dtype(torch.where(valid[..., None], features, 0.0), torch.float32)


class MLPHead(nn.Module):
    def __init__(
        self, feat_dim, action_chunk, action_dim, has_gripper, hidden=1024, layers=2, history=1, tanh_actions=True
    ):
        super().__init__()
        self.history = history
        self.mlp = MLP(feat_dim * history, hidden, layers)
        self.readout = ActionReadout(
            hidden if layers else feat_dim * history, action_chunk, action_dim, has_gripper, tanh_actions
        )

    def forward(self, features, valid):
        x = _mask_features(features, valid)
        if self.history > 1:
            t = x.shape[1]
            shifted = [F.pad(x, (0, 0, k, 0))[:, :t] for k in range(self.history)]
            x = torch.cat(shifted[::-1], dim=-1)
        return self.readout(self.mlp(x))


Carry = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (c, h), as Flax orders it


class LSTMStack(nn.Module):
    def __init__(self, hidden: int, layers: int):
        super().__init__()
        self.hidden, self.layers = hidden, layers
        for i in range(layers):
            self.add_module(f"layer_{i}", nn.LSTMCell(hidden, hidden))

    def forward(self, carry: Carry, x: torch.Tensor, valid: torch.Tensor):
        new: Carry = []
        for i in range(self.layers):
            c, h = carry[i]
            h2, c2 = getattr(self, f"layer_{i}")(x, (h, c))
            keep = valid[:, None]
            new.append((torch.where(keep, c2, c), torch.where(keep, h2, h)))
            x = h2
        return new, x


class LSTMHead(nn.Module):
    def __init__(self, feat_dim, action_chunk, action_dim, has_gripper, hidden=1024, layers=4, tanh_actions=True):
        super().__init__()
        self.hidden, self.num_layers = hidden, layers
        self.input_proj = nn.Linear(feat_dim, hidden)
        self.lstm = LSTMStack(hidden, layers)
        self.readout_mlp = MLP(hidden, hidden, 1)
        self.readout = ActionReadout(hidden, action_chunk, action_dim, has_gripper, tanh_actions)

    def initial_carry(self, batch: int, device=None) -> Carry:
        z = torch.zeros(batch, self.hidden, device=device)
        return [(z, z) for _ in range(self.num_layers)]

    def step(self, carry: Carry, feature: torch.Tensor, valid: torch.Tensor):
        """One frame: feature [B, D], valid [B] -> (carry, outputs [B, C, A])."""
        x = self.input_proj(_mask_features(feature, valid))
        carry, h = self.lstm(carry, x, valid)
        return carry, self.readout(self.readout_mlp(h))

    def window_step(self, chains: Carry | None, feature: torch.Tensor, window: int) -> tuple[Carry, torch.Tensor]:
        """The robot's sliding window, one new frame at a time, exactly as training computes it: the LSTM restarts
        at the window's first frame, so ONE run per window start is kept alive. Per layer, row k of (c, h) is
        the run that started k frames after the oldest one in the window; each step starts a new run (zero carry),
        advances every run by the new frame in ONE batched cell call per layer, returns the readout of the oldest
        run (it has seen exactly the window: all of it once slid, else the whole episode so far, as the masked
        padding leaves the carry at zero) and drops it once it has seen `window` frames.

        feature [1, D] -> (chains, action [1, C, A]) = `forward(window's features, all valid)["action"][:, -1]`
        (`last_of_full_window` once slid), to float32 rounding; per step `num_layers` cell calls, whatever T."""
        x = _linear(self.input_proj, as_dtype(feature, torch.float32))  # [1, H]
        if chains is None:
            chains = self.initial_carry(1, x.device)
        else:  # the new run: a zero carry as the last row
            chains = [(F.pad(c, (0, 0, 0, 1)), F.pad(h, (0, 0, 0, 1))) for c, h in chains]
        x = x.expand(chains[0][0].shape[0], -1)
        new: Carry = []
        for i in range(self.num_layers):
            cell = getattr(self.lstm, f"layer_{i}")
            c, h = chains[i]
            h, c = torch.lstm_cell(x, (h, c), cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
            new.append((c, h))
            x = h
        action = self.readout(self.readout_mlp(x[:1]))["action"]
        if x.shape[0] >= window:  # the oldest run has seen the whole window: the next one does not need it
            new = [(c[1:], h[1:]) for c, h in new]
        return new, action

    def last_of_full_window(self, features: torch.Tensor) -> torch.Tensor:
        """`forward(features, all valid)["action"][:, -1]` for a window whose every step is valid (the robot's
        sliding window): the stack runs as ONE fused `torch.lstm` call over T (the same cells' weights, gate
        order i, f, g, o as LSTMCell) instead of T x layers cell calls, and the readout on the last step only."""
        x = self.input_proj(features.float())
        params = []
        for i in range(self.num_layers):
            cell = getattr(self.lstm, f"layer_{i}")
            params += [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
        zeros = x.new_zeros(self.num_layers, x.shape[0], self.hidden)
        h = torch.lstm(x, (zeros, zeros), params, True, self.num_layers, 0.0, False, False, True)[0]
        return self.readout(self.readout_mlp(h[:, -1]))["action"]

    def forward(self, features, valid):
        x = self.input_proj(_mask_features(features, valid))
        carry = self.initial_carry(features.shape[0], features.device)
        hs = []
        for t in range(features.shape[1]):
            carry, h = self.lstm(carry, x[:, t], valid[:, t])
            hs.append(h)
        return self.readout(self.readout_mlp(torch.stack(hs, dim=1)))


class SelfAttention(nn.Module):
    """flax.linen.MultiHeadDotProductAttention (q scaled by 1/sqrt(head_dim), masked logits = finfo.min)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.out = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, mask):  # mask bool [B, 1, T, T]
        b, t, d = x.shape
        hd = d // self.heads

        def split(y):
            return y.view(b, t, self.heads, hd).transpose(1, 2)

        q = split(self.query(x)) / (hd**0.5)
        k, v = split(self.key(x)), split(self.value(x))
        w = torch.matmul(q, k.transpose(-1, -2))
        w = w.masked_fill(~mask, torch.finfo(w.dtype).min)
        y = torch.matmul(torch.softmax(w, dim=-1), v)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.ln_1, self.ln_2 = _LN(d), _LN(d)
        self.attn = SelfAttention(d, heads)
        self.fc, self.proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, mask):
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.proj(F.gelu(self.fc(self.ln_2(x))))


class GPTHead(nn.Module):
    def __init__(
        self,
        feat_dim,
        action_chunk,
        action_dim,
        has_gripper,
        window_size,
        hidden=512,
        layers=4,
        heads=8,
        tanh_actions=True,
    ):
        super().__init__()
        self.window_size, self.num_layers = window_size, layers
        self.input_proj = nn.Linear(feat_dim, hidden)
        self.pos_embedding = nn.Parameter(torch.zeros(window_size, hidden))
        for i in range(layers):
            self.add_module(f"block_{i}", Block(hidden, heads))
        self.ln_f = _LN(hidden)
        self.readout = ActionReadout(hidden, action_chunk, action_dim, has_gripper, tanh_actions)

    def forward(self, features, valid):
        t = features.shape[1]
        if t > self.window_size:
            raise ValueError(f"GPTHead: {t} steps exceed window_size={self.window_size}")
        x = self.input_proj(_mask_features(features, valid)) + self.pos_embedding[self.window_size - t :]
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        mask = causal[None, None] & valid[:, None, :, None] & valid[:, None, None, :]
        for i in range(self.num_layers):
            x = getattr(self, f"block_{i}")(x, mask)
        return self.readout(self.ln_f(x))


def build_head(policy: dict, feat_dim: int) -> nn.Module | None:
    """The head named by the exported policy config (vla_jax.vla.VLAConfig fields); None for discrete."""
    kind = policy["head"]
    common = dict(
        action_chunk=policy["action_chunk"],
        action_dim=policy["action_dim"],
        has_gripper=policy["has_gripper"],
        tanh_actions=policy.get("tanh_actions", True),
    )
    hidden = policy.get("head_hidden_size", 1024)
    layers = policy.get("head_layers", 4)
    if kind == "mlp":
        # As vla_jax.vla: the policy-head MLP fuses the whole window, elsewhere it sees one step.
        history = policy["window_size"] if policy["structure"] == "policy_head" else 1
        return MLPHead(feat_dim, hidden=hidden, layers=layers, history=history, **common)
    if kind == "lstm":
        return LSTMHead(feat_dim, hidden=hidden, layers=layers, **common)
    if kind == "gpt":
        return GPTHead(
            feat_dim,
            window_size=policy["window_size"],
            hidden=hidden,
            layers=layers,
            heads=policy.get("head_heads", 8),
            **common,
        )
    if kind == "discrete":
        return None
    raise ValueError(f"unknown head {kind!r}")
