"""Flax params -> the torch runtime's state dict.

The backbone is the exact inverse of its family's convert table
(`vla_jax/convert/<family>_table.py`: HF names on the torch side, so the
runtime's transformers class also loads a HF checkpoint). Heads and structure
parameters follow the Flax tree one to one:
a Dense kernel [in, out] becomes a Linear weight [out, in]; LayerNorm scale ->
weight; a Flax LSTMCell's eight gate Denses become one torch LSTMCell in gate
order (i, f, g, o); MultiHeadDotProductAttention's [D, heads, head_dim]
kernels become plain [D, D] Linears.

Every Flax leaf must be consumed exactly once: a leftover or a missing leaf is
an error naming it, so a new parameter in vla_jax cannot be dropped silently.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from flax import traverse_util

from vla_jax.convert.table import to_hf
from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.stacking import stack_layers


def _flat(tree: Mapping) -> dict[str, np.ndarray]:
    return {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(dict(tree)).items()}


class _Consumer:
    """Hands out Flax leaves by path and remembers which were used."""

    def __init__(self, flat: dict[str, np.ndarray], where: str):
        self.flat, self.where, self.used = flat, where, set()

    def take(self, path: str) -> np.ndarray:
        if path not in self.flat:
            raise VLAJaxError(
                f"export: {self.where} has no parameter {path!r}; the checkpoint does not match "
                f"the config (available: {sorted(self.flat)[:8]} ...)"
            )
        self.used.add(path)
        return np.asarray(self.flat[path], np.float32)

    def has(self, path: str) -> bool:
        return path in self.flat

    def check_all_used(self) -> None:
        left = sorted(set(self.flat) - self.used)
        if left:
            raise VLAJaxError(
                f"export: {self.where} parameters {left[:8]} have no place in the torch runtime; "
                "the runtime is older than this model (update vla_jax/export/mapping.py)"
            )


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, copy=True))


def backbone_state_dict(backbone_params: Mapping, config) -> dict[str, torch.Tensor]:
    """A family's Flax params (scanned or unrolled) -> float32 torch tensors under the HF class's state-dict
    names: the family's convert table read backwards."""
    # The table of the HF class the export's config.json names (the CLIP + Kosmos-2 hybrid is a "kosmos-2" one).
    table = importlib.import_module(backbone_lib.family(config.to_hf_dict()["model_type"]).table_module)
    c = _Consumer(_flat(stack_layers(dict(backbone_params))), "backbone")
    out: dict[str, torch.Tensor] = {}
    for row in table.mapping_table(config):
        ours = c.take(row.ours)
        layers = [ours[i] for i in range(row.num_layers)] if row.num_layers else [ours]
        for name, arr in zip(row.hf_names(), layers):
            out[name] = _t(to_hf(arr, row.transform))
    c.check_all_used()
    return out


def linear(c: _Consumer, flax_path: str, torch_name: str, out: dict[str, torch.Tensor], bias: bool = True):
    out[f"{torch_name}.weight"] = _t(c.take(f"{flax_path}/kernel").T)
    if bias:
        out[f"{torch_name}.bias"] = _t(c.take(f"{flax_path}/bias"))


def layer_norm(c: _Consumer, flax_path: str, torch_name: str, out: dict[str, torch.Tensor]):
    out[f"{torch_name}.weight"] = _t(c.take(f"{flax_path}/scale"))
    out[f"{torch_name}.bias"] = _t(c.take(f"{flax_path}/bias"))


def lstm_cell(c: _Consumer, flax_path: str, torch_name: str, out: dict[str, torch.Tensor]):
    """flax.linen.LSTMCell (ii/if/ig/io without bias, hi/hf/hg/ho with bias) -> torch.nn.LSTMCell."""
    w_ih = [c.take(f"{flax_path}/i{g}/kernel").T for g in "ifgo"]
    w_hh = [c.take(f"{flax_path}/h{g}/kernel").T for g in "ifgo"]
    b_hh = [c.take(f"{flax_path}/h{g}/bias") for g in "ifgo"]
    out[f"{torch_name}.weight_ih"] = _t(np.concatenate(w_ih, 0))
    out[f"{torch_name}.weight_hh"] = _t(np.concatenate(w_hh, 0))
    out[f"{torch_name}.bias_ih"] = torch.zeros(out[f"{torch_name}.weight_ih"].shape[0])
    out[f"{torch_name}.bias_hh"] = _t(np.concatenate(b_hh, 0))


def mha(c: _Consumer, flax_path: str, torch_name: str, out: dict[str, torch.Tensor]):
    """flax MultiHeadDotProductAttention -> runtime SelfAttention (query/key/value/out Linears)."""
    for name in ("query", "key", "value"):
        k = c.take(f"{flax_path}/{name}/kernel")  # [D, H, hd]
        out[f"{torch_name}.{name}.weight"] = _t(k.reshape(k.shape[0], -1).T)
        out[f"{torch_name}.{name}.bias"] = _t(c.take(f"{flax_path}/{name}/bias").reshape(-1))
    k = c.take(f"{flax_path}/out/kernel")  # [H, hd, D]
    out[f"{torch_name}.out.weight"] = _t(k.reshape(-1, k.shape[-1]).T)
    out[f"{torch_name}.out.bias"] = _t(c.take(f"{flax_path}/out/bias"))


def head_state_dict(head: str, head_params: Mapping, head_cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    """One action head's Flax params -> runtime `vla_runtime.heads` names (prefix added by the caller)."""
    c = _Consumer(_flat(head_params), f"head {head!r}")
    out: dict[str, torch.Tensor] = {}
    if head == "mlp":
        for i in range(head_cfg["head_layers"]):
            linear(c, f"mlp/dense_{i}", f"mlp.dense_{i}", out)
        linear(c, "readout/out", "readout.out", out)
    elif head == "lstm":
        linear(c, "input_proj", "input_proj", out)
        for i in range(head_cfg["head_layers"]):
            lstm_cell(c, f"lstm/layer_{i}", f"lstm.layer_{i}", out)
        linear(c, "readout_mlp/dense_0", "readout_mlp.dense_0", out)
        linear(c, "readout/out", "readout.out", out)
    elif head == "gpt":
        linear(c, "input_proj", "input_proj", out)
        out["pos_embedding"] = _t(c.take("pos_embedding"))
        for i in range(head_cfg["head_layers"]):
            b = f"block_{i}"
            layer_norm(c, f"{b}/ln_1", f"{b}.ln_1", out)
            mha(c, f"{b}/attn", f"{b}.attn", out)
            layer_norm(c, f"{b}/ln_2", f"{b}.ln_2", out)
            linear(c, f"{b}/fc", f"{b}.fc", out)
            linear(c, f"{b}/proj", f"{b}.proj", out)
        layer_norm(c, "ln_f", "ln_f", out)
        linear(c, "readout/out", "readout.out", out)
    elif head != "discrete":
        raise VLAJaxError(f"export: head {head!r} is not supported by the torch runtime")
    c.check_all_used()
    return out
