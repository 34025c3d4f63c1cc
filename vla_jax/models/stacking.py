"""Apply a stack of identical layers either scanned (`nn.scan`, one compiled body) or unrolled.

Scanned parameters live under `<name>` with the layer index as axis 0 of every leaf; unrolled
ones live under `<name>_0 .. <name>_{n-1}`. `unstack_layers` / `stack_layers` convert between the
two layouts so the same weights can run either way (used by tests and by conversion).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def apply_layers(
    layer_cls: type[nn.Module],
    layer_kwargs: dict[str, Any],
    num_layers: int,
    x: jax.Array,
    *broadcast_args: Any,
    scan: bool,
    remat: bool,
    name: str = "layers",
    per_layer: Any = None,
) -> jax.Array:
    """Run `num_layers` copies of `layer_cls(**layer_kwargs)`; each maps (x, *args) -> (x, None).

    `per_layer`: an optional pytree whose leaves have the layer index as axis 0 (e.g. Gemma 2's
    "is this a sliding-window layer" flags); layer i then gets its slice as the last argument.
    Must be called from inside a compact method of the parent module.
    """
    cls = layer_cls
    if remat:
        # Inside scan, CSE across iterations is impossible anyway; prevent_cse=False lets XLA fuse better.
        cls = nn.remat(layer_cls, prevent_cse=not scan)
    if scan:
        in_axes = (nn.broadcast,) * len(broadcast_args) + ((0,) if per_layer is not None else ())
        stack = nn.scan(
            cls,
            variable_axes={"params": 0},
            split_rngs={"params": True, "dropout": True},
            in_axes=in_axes,  # pyright: ignore[reportArgumentType]
            length=num_layers,
        )
        extra = (per_layer,) if per_layer is not None else ()
        x, _ = stack(**layer_kwargs, name=name)(x, *broadcast_args, *extra)
        return x
    for i in range(num_layers):
        extra = (jax.tree_util.tree_map(lambda a, i=i: a[i], per_layer),) if per_layer is not None else ()
        x, _ = cls(**layer_kwargs, name=f"{name}_{i}")(x, *broadcast_args, *extra)
    return x


def _map_dicts(tree: Any, fn: Callable[[dict], dict]) -> Any:
    if not isinstance(tree, dict):
        return tree
    return fn({k: _map_dicts(v, fn) for k, v in tree.items()})


def unstack_layers(params: Any, name: str = "layers") -> Any:
    """Scanned layout -> unrolled layout (`layers` [n, ...] -> `layers_0`, `layers_1`, ...)."""

    def fn(d: dict) -> dict:
        if name not in d:
            return d
        out = {k: v for k, v in d.items() if k != name}
        stacked = d[name]
        n = jax.tree_util.tree_leaves(stacked)[0].shape[0]
        for i in range(n):
            out[f"{name}_{i}"] = jax.tree_util.tree_map(lambda a, i=i: a[i], stacked)
        return out

    return _map_dicts(params, fn)


def stack_layers(params: Any, name: str = "layers") -> Any:
    """Unrolled layout -> scanned layout (inverse of `unstack_layers`)."""
    pat = re.compile(rf"^{re.escape(name)}_(\d+)$")

    def fn(d: dict) -> dict:
        idx = sorted((int(m.group(1)), k) for k in d if (m := pat.match(k)))
        if not idx:
            return d
        if [i for i, _ in idx] != list(range(len(idx))):
            raise ValueError(f"layer indices are not contiguous: {[k for _, k in idx]}")
        out = {k: v for k, v in d.items() if not pat.match(k)}
        out[name] = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[d[k] for _, k in idx])
        return out

    return _map_dicts(params, fn)
