"""From the train config to the policy module, its loss, an init batch, and pretrained weights.

``config.model`` holds every `VLAConfig` field (`vla_jax.train.config.with_model_defaults` fills those a
config file leaves out with VLAConfig's defaults) plus ``backbone`` (the
backbone config's ``to_dict()``: ``model_type`` plus every field of that
family's config, nested sub-configs such as ``vision``/``text``), so each
architecture knob can be overridden from the command line. ``config.init_from``
is the single field that starts from existing weights:

* a ``vla-jax convert-hf`` output folder: its backbone weights replace the
  backbone (architecture must match ``config.model.backbone``); head fresh;
* a training workdir (has ``config.json`` and ``checkpoints/``): its latest
  params (LoRA folded in) replace ours leaf by leaf; leaves whose shape
  changed (e.g. a 7-D pre-training head -> 2-D mobile head) must match
  ``config.init_reinit`` and are freshly initialised, anything else is an error.
  Optimizer state and data statistics always start fresh.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chex
import jax
import ml_collections
import numpy as np
from flax import traverse_util

from data_pipelines import loader
from vla_jax.convert.converted import load_converted
from vla_jax.errors import VLAJaxError
from vla_jax.losses import vla_loss
from vla_jax.models.backbone import config_from_dict
from vla_jax.train.checkpoint import load_for_inference
from vla_jax.vla import VLAConfig, VLAPolicy, dummy_batch, image_preprocessing
from vla_runtime.policy_io import Preprocessing


@dataclasses.dataclass
class ModelBundle:
    module: Any  # flax.linen Module: module.apply({"params": p}, batch, deterministic=..., rngs=...)
    loss_fn: Callable[[Any, dict], tuple[jax.Array, dict]]
    backbone_key: str = "backbone"  # where the backbone params live inside the policy's params


def backbone_config(model_cfg: ml_collections.ConfigDict):
    try:
        return config_from_dict(model_cfg.backbone.to_dict())
    except (TypeError, VLAJaxError) as err:
        raise VLAJaxError(f"config model.backbone: {err}") from None


def backbone_config_dict(backbone_config) -> dict:
    """For config files: the backbone config as a (nested) dict with its model_type."""
    return backbone_config.to_dict()


def data_shapes(config: ml_collections.ConfigDict) -> dict[str, int]:
    """The data's shapes, derived from the model: the one place they are stated (T, C, A, image size, L)."""
    m = config.model
    return {
        "window_size": int(m.window_size),
        "action_chunk": int(m.action_chunk),
        "action_dim": int(m.action_dim),
        "image_size": int(backbone_config(m).image_size),  # the backbone interface: any family
        "instruction_length": int(config.data.instruction_length),
    }


def loader_config(config: ml_collections.ConfigDict, **overrides: Any) -> dict[str, Any]:
    """`config.data.config` plus the derived shapes: the data_config `make_loader` gets."""
    data = config.data.config.to_dict()
    stated = sorted(set(data) & set(loader.SHAPE_KEYS))
    if stated:
        raise VLAJaxError(
            f"config data.config sets {', '.join(stated)}: data shapes derive from the model; "
            "remove them (set config.model.window_size / action_chunk / action_dim, the backbone's "
            "image_size and config.data.instruction_length instead)"
        )
    return {**data, **data_shapes(config), **overrides}


def _data_config(config: ml_collections.ConfigDict) -> Any:
    data: Any = config.get("data", {})
    return data.get("config", {})


def preprocessing(config: ml_collections.ConfigDict, input_channel_order: str = "RGB") -> Preprocessing:
    """Camera frame -> model input for this train config (policy_io): the model's size and mean/std,
    the data config's resize mode. What the export writes and the JAX reference policy applies."""
    return image_preprocessing(
        vla_config(config), _data_config(config).get("resize_mode", "resize"), input_channel_order
    )


def vla_config(config: ml_collections.ConfigDict):
    return VLAConfig.from_dict(config.model.to_dict())


def build_model(config: ml_collections.ConfigDict) -> ModelBundle:
    vcfg = vla_config(config)
    return ModelBundle(module=VLAPolicy(vcfg), loss_fn=lambda outputs, batch: vla_loss(vcfg, outputs, batch))


def example_batch(config: ml_collections.ConfigDict, batch_size: int = 1) -> dict:
    """Zeros with the docs/design.md batch shapes the config implies (for `init` / `eval_shape`)."""
    return dummy_batch(vla_config(config), batch_size=batch_size, instruction_length=config.data.instruction_length)


def check_batch(config: ml_collections.ConfigDict, host_batch: dict) -> None:
    """The loader's batch has the keys, shapes and dtypes this config's model takes (docs/design.md, "The batch").

    Checked once on the first batch: a mismatch would otherwise surface as an XLA shape error deep inside
    the jitted step.
    """
    rows = len(next(iter(host_batch.values())))
    expected = jax.eval_shape(lambda: example_batch(config, rows))
    got = {k: jax.ShapeDtypeStruct(np.shape(v), np.asarray(v).dtype) for k, v in host_batch.items()}
    try:
        chex.assert_trees_all_equal_shapes_and_dtypes(got, expected)
    except AssertionError as err:
        detail = " ".join(str(err).split()).split("failed: ", 1)[-1]  # chex's message without its prefix
        raise VLAJaxError(
            f"the data loader's batch does not fit config.model ({detail}); the batch "
            "is built from config.model and config.data (vla_jax.train.model.data_shapes)"
        ) from None


def _path(p: tuple) -> str:
    return "/".join(map(str, p))


def _overlay(target: Any, source: Any, reinit_pattern: str, where: str) -> tuple[Any, list[str]]:
    """Copy ``source`` leaves onto ``target`` (host numpy trees); returns (tree, reinitialised paths)."""
    flat_t: dict[Any, Any] = traverse_util.flatten_dict(target)
    flat_s: dict[Any, Any] = traverse_util.flatten_dict(source)
    reinit = []
    for path, leaf in flat_t.items():
        name = _path(path)
        src = flat_s.get(path)
        if src is None:
            problem = (
                f"{where}: parameter {name!r} is missing there; start from a matching checkpoint "
                f"or add it to --config.init_reinit (a regex of freshly initialised params)"
            )
        elif tuple(src.shape) != tuple(leaf.shape):
            problem = (
                f"{where}: parameter {name!r} has shape {tuple(src.shape)} there but {tuple(leaf.shape)} in "
                f"this config; make config.model match it or add it to --config.init_reinit"
            )
        else:
            problem = None
        if problem:
            if reinit_pattern and re.search(reinit_pattern, name):
                reinit.append(name)
                continue
            raise VLAJaxError(problem)
        flat_t[path] = np.asarray(src, dtype=leaf.dtype)
    return traverse_util.unflatten_dict(flat_t), reinit


def load_pretrained(
    init_from: str, params: Any, config: ml_collections.ConfigDict, bundle: ModelBundle
) -> tuple[Any, str]:
    """Host params with pretrained values overlaid; returns (params, one-line description)."""
    path = Path(init_from)
    if not path.exists():
        raise VLAJaxError(
            f"config init_from={init_from!r} does not exist; point it at convert-hf output or a training workdir"
        )
    params = jax.tree.map(np.asarray, params)
    if (path / "config.json").is_file() and (path / "checkpoints").is_dir():
        _, source, _ = load_for_inference(path)
        merged, reinit = _overlay(params, source, config.init_reinit, str(path))
        note = f"initialised from training workdir {path}" + (f"; fresh: {', '.join(reinit)}" if reinit else "")
        return merged, note
    ours = backbone_config(config.model)
    source_cfg, source = load_converted(str(path), scan_layers=ours.scan_layers)
    if source_cfg.to_hf_dict() != ours.to_hf_dict():
        theirs, mine = source_cfg.to_hf_dict(), ours.to_hf_dict()
        diff = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
        raise VLAJaxError(
            f"{path}: converted {source_cfg.model_type} architecture differs from config.model.backbone "
            f"({ours.model_type}) in {', '.join(diff)}; set config.model.backbone to the converted model's "
            "config (e.g. its family's Config.full())"
        )
    key = bundle.backbone_key
    if key not in params:
        raise VLAJaxError(f"policy params have no {key!r} subtree to receive the converted backbone")
    params = dict(params)
    params[key], reinit = _overlay(params[key], source, "", str(path))
    return params, f"backbone initialised from convert-hf output {path}"
