"""The export folder: one definition of its files, written by `vla-jax export`, read by `Policy.load`.

    model.safetensors    weights, torch names (HF names for the backbone); int8 = per-channel linear weights
    config.json          format version, architecture, policy config, dtype, sha256 of every other file
    tokenizer.json       the training tokenizer (Hugging Face `tokenizers` format)
    preprocessing.json   image size, resize mode, mean/std, channel orders
    statistics.json      action statistics + normalisation mode
    MODEL_CARD.md        what the model is, how it was trained, how to run it

Every file but config.json is hashed into config.json's `files`, so a truncated
copy or a hand-edited statistics file is caught at load time instead of
driving the robot with the wrong scale.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import guards, quantize
from .backbones import SUPPORTED as SUPPORTED_BACKBONES
from .errors import RuntimeConfigError

FORMAT = "vla-runtime-export"
# 2: one name per concept (policy `action_chunk`, tokenizer `instruction_length`, preprocessing `resize_mode`),
# preprocessing written from vla_runtime.policy_io, the backbone's tensors under its transformers class's own
# state-dict names and `architecture` = the backbone's model_type. Format 1 exports must be re-exported.
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (2,)
FILES = ("model.safetensors", "tokenizer.json", "preprocessing.json", "statistics.json", "MODEL_CARD.md")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
EXPORT_DTYPES = tuple(DTYPES) + ("int8",)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def write_export(
    out_dir: str,
    *,
    state_dict: Mapping[str, torch.Tensor],
    policy_config: dict,
    backbone_config: dict,
    tokenizer_json: str,
    tokenizer_config: dict,
    preprocessing: dict,
    statistics: dict,
    model_card: str,
    dtype: str = "float32",
    extra: dict | None = None,
) -> dict:
    """Writes the folder (creating it) and returns config.json's content.

    `state_dict` holds float32 tensors under the runtime's names; `dtype` picks
    how they are stored. `tokenizer_json` is the text of a tokenizer.json.
    """
    if dtype not in EXPORT_DTYPES:
        raise RuntimeConfigError(f"export dtype {dtype!r} is unknown; use one of {EXPORT_DTYPES}")
    os.makedirs(out_dir, exist_ok=True)
    if dtype == "int8":
        tensors = quantize.quantize_state_dict(state_dict)
    else:
        tensors = {k: v.detach().to(DTYPES[dtype]).contiguous() for k, v in state_dict.items()}
    guards.finite_tensors(tensors, f"export at {dtype}")  # e.g. a float32 weight beyond float16's 65504
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt", "dtype": dtype})
    with open(os.path.join(out_dir, "tokenizer.json"), "w") as f:
        f.write(tokenizer_json)
    _write_json(os.path.join(out_dir, "preprocessing.json"), preprocessing)
    _write_json(os.path.join(out_dir, "statistics.json"), statistics)
    with open(os.path.join(out_dir, "MODEL_CARD.md"), "w") as f:
        f.write(model_card)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": backbone_config.get("model_type"),
        "backbone": backbone_config,
        "policy": policy_config,
        "tokenizer": tokenizer_config,
        "dtype": dtype,
        "files": {name: sha256(os.path.join(out_dir, name)) for name in FILES},
    }
    if extra:
        config.update(extra)
    _write_json(os.path.join(out_dir, "config.json"), config)
    return config


def read_config(export_dir: str, verify_files: bool = True) -> dict:
    """config.json, after checking the format version and (by default) every file's sha256."""
    path = os.path.join(export_dir, "config.json")
    if not os.path.isdir(export_dir):
        raise RuntimeConfigError(
            f"export folder {export_dir!r} does not exist; pass the --out folder of vla-jax export"
        )
    if not os.path.isfile(path):
        raise RuntimeConfigError(
            f"{path} is missing: {export_dir!r} is not a vla-jax export folder "
            "(create one with vla-jax export --workdir DIR --out EXPORT_DIR)"
        )
    try:
        with open(path) as f:
            config = json.load(f)
    except json.JSONDecodeError as err:
        raise RuntimeConfigError(f"{path} is not valid JSON ({err}); copy the export folder again") from err
    if config.get("format") != FORMAT:
        raise RuntimeConfigError(f"{path}: 'format' is {config.get('format')!r}, expected {FORMAT!r}")
    version = config.get("format_version")
    if version == 1 and not isinstance(version, bool):  # JSON true == 1 in Python: refused below instead
        raise RuntimeConfigError(
            f"{path}: format_version 1 (written by an older vla-jax) is no longer read: its field names and "
            "preprocessing differ; re-export the training workdir: vla-jax export --workdir DIR --out EXPORT_DIR"
        )
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise RuntimeConfigError(
            f"{path}: format_version {version!r} is not supported by this vla-runtime (knows {SUPPORTED_VERSIONS}); "
            "upgrade vla-runtime or re-export with a matching vla-jax"
        )
    model_type = (config.get("backbone") or {}).get("model_type")
    if model_type not in SUPPORTED_BACKBONES:
        raise RuntimeConfigError(
            f"{path}: backbone.model_type {model_type!r} is not one this vla-runtime runs "
            f"({', '.join(SUPPORTED_BACKBONES)}); upgrade vla-runtime or re-export"
        )
    if config.get("dtype") not in EXPORT_DTYPES:
        raise RuntimeConfigError(f"{path}: dtype {config.get('dtype')!r} is unknown; expected one of {EXPORT_DTYPES}")
    files = config.get("files") or {}
    for name in FILES:
        full = os.path.join(export_dir, name)
        if name not in files:
            raise RuntimeConfigError(f"{path}: no sha256 for {name} in 'files'; re-export the folder")
        if not os.path.isfile(full):
            raise RuntimeConfigError(f"{full} is missing from the export folder; copy the whole folder again")
        if verify_files and sha256(full) != files[name]:
            raise RuntimeConfigError(
                f"{full} was altered or truncated (sha256 differs from config.json); copy the export folder again "
                "or re-export it"
            )
    return config


def read_json(export_dir: str, name: str) -> dict:
    with open(os.path.join(export_dir, name)) as f:
        return json.load(f)


def load_state_dict(export_dir: str, dtype_for) -> dict[str, torch.Tensor]:
    """model.safetensors -> CPU tensors, each cast to `dtype_for(name)` (int8 weights dequantised here).

    Tensors are cast one at a time so peak memory stays near the file size (no float32 detour
    for a half-precision export).
    """
    path = os.path.join(export_dir, "model.safetensors")
    try:
        raw = load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as err:  # damaged header or data: one line, not a traceback
        raise RuntimeConfigError(
            f"{path} is not a readable safetensors file ({err}); copy the export folder again or re-export it"
        ) from None
    out: dict[str, torch.Tensor] = {}
    for name in [k for k in raw if not k.endswith(quantize.SCALE_SUFFIX)]:
        tensor = raw.pop(name)
        scale = raw.pop(name + quantize.SCALE_SUFFIX, None)
        if scale is not None:
            tensor = quantize.dequantize(tensor, scale)
        out[name] = tensor.to(dtype_for(name))
    guards.finite_tensors(out, path)  # after the cast: a float32 weight beyond 65504 is inf in float16
    return out
