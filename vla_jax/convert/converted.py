"""Our converted-checkpoint folder: what `vla-jax convert-hf` writes and the trainer reads.

DIR/params.safetensors   float32 params, scanned layout, keys '/'-joined Flax paths
DIR/config.json          the backbone's to_hf_dict() (HF-shaped, HF's model_type) plus
                         "vla_jax_model_type" (ours: differs for the CLIP + Kosmos-2 hybrid)
DIR/<tokenizer files>    copied from the HF folder when present, so DIR is self-contained
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import traverse_util
from safetensors.numpy import load_file, save_file

from vla_jax.convert.hf_checkpoint import read_hf_config
from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.stacking import stack_layers, unstack_layers

PARAMS_FILE = "params.safetensors"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "added_tokens.json",
    "preprocessor_config.json",
    "processor_config.json",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
)


def save_converted(out_dir: str | Path, config, params: Any, *, tokenizer_src: Path | None = None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = stack_layers(jax.device_get(params)) if not config.scan_layers else jax.device_get(params)
    flat = {
        k: np.ascontiguousarray(np.asarray(v, dtype=np.float32))
        for k, v in traverse_util.flatten_dict(params, sep="/").items()
    }
    save_file(flat, str(out / PARAMS_FILE), metadata={"format": f"vla-jax/{config.model_type}", "layout": "scanned"})
    hf = {**config.to_hf_dict(), "vla_jax_model_type": config.model_type}
    (out / "config.json").write_text(json.dumps(hf, indent=2) + "\n")
    if tokenizer_src is not None:
        for name in TOKENIZER_FILES:
            if (Path(tokenizer_src) / name).is_file():
                shutil.copy2(Path(tokenizer_src) / name, out / name)
    return out


def load_converted(path: str | Path, **knobs: Any) -> tuple[Any, dict]:
    """DIR from `vla-jax convert-hf` -> (config, float32 params). `knobs`: dtype, scan_layers, remat."""
    path = Path(path)
    params_file = path / PARAMS_FILE
    if not params_file.is_file():
        hint = (
            " (this looks like a Hugging Face folder: run `vla-jax convert-hf --src` on it first)"
            if (path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file()
            else ""
        )
        raise VLAJaxError(f"{params_file} not found{hint}")
    config = read_hf_config(path, **knobs)
    try:
        flat = load_file(str(params_file))
    except Exception as err:  # SafetensorError / OSError: a damaged copy
        raise VLAJaxError(f"{params_file} is not a readable safetensors file ({err}); run convert-hf again") from None
    want: dict[Any, Any] = traverse_util.flatten_dict(
        backbone_lib.param_shapes(config.replace(scan_layers=True)), sep="/"
    )
    for key, spec in want.items():
        if key not in flat:
            raise VLAJaxError(f"{params_file}: parameter {key} is missing (expected shape {list(spec.shape)})")
        if tuple(flat[key].shape) != tuple(spec.shape):
            raise VLAJaxError(
                f"{params_file}: parameter {key} has shape {list(flat[key].shape)}, "
                f"expected {list(spec.shape)} from {path / 'config.json'}"
            )
    bad = next((k for k, v in flat.items() if not np.isfinite(v).all()), None)
    if bad is not None:
        raise VLAJaxError(f"{params_file}: parameter {bad} holds non-finite values (NaN/inf); run convert-hf again")
    extra = sorted(set(flat) - set(want))
    if extra:
        raise VLAJaxError(f"{params_file}: unexpected parameters {extra[:5]}; config.json and params disagree")
    params = traverse_util.unflatten_dict(flat, sep="/")
    return config, (params if config.scan_layers else unstack_layers(params))
