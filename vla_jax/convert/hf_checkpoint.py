"""Read a Hugging Face Kosmos-2 folder (config.json + safetensors, sharded or not) into our params.

No torch: tensors are read with `safetensors` (numpy framework), one at a time, after every name
and shape has been checked against the mapping table. Anything wrong is a `VLAJaxError` naming the
file and tensor; nothing is ever silently left at a random init.

Unexpected tensors are an ERROR, not a warning: an extra tensor means the checkpoint is a variant
we do not implement (e.g. cross-attention layers, an untied LM head), and dropping it silently
would give a model that is not the checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import traverse_util
from safetensors import safe_open

from vla_jax.convert.kosmos2_table import IGNORED_HF_TENSORS, hf_shape, mapping_table, to_ours
from vla_jax.errors import VLAJaxError
from vla_jax.models.kosmos2 import Kosmos2Config, init_params
from vla_jax.models.stacking import unstack_layers


def read_hf_config(src: str | Path, **knobs: Any) -> Kosmos2Config:
    path = Path(src) / "config.json"
    if not path.is_file():
        raise VLAJaxError(f"{path} not found: --src must be a Hugging Face model folder (save_pretrained output)")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise VLAJaxError(f"{path} is not valid JSON ({err})") from err
    try:
        config = Kosmos2Config.from_hf_dict(d, **knobs)
    except VLAJaxError as err:
        raise VLAJaxError(f"{path}: {err}") from err
    if d.get("text_config", {}).get("tie_word_embeddings", True) is False or d.get("tie_word_embeddings") is False:
        raise VLAJaxError(f"{path}: tie_word_embeddings=false is not supported (Kosmos-2 ties the LM head)")
    return config


def _tensor_files(src: Path) -> dict[str, Path]:
    """HF tensor name -> the safetensors file holding it."""
    index = src / "model.safetensors.index.json"
    single = src / "model.safetensors"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as err:
            raise VLAJaxError(f"{index} is not a valid safetensors index (needs a 'weight_map'): {err}") from err
        files = {name: src / fname for name, fname in weight_map.items()}
        for f in sorted(set(files.values())):
            if not f.is_file():
                raise VLAJaxError(f"{f} is listed in {index.name} but missing; re-download the checkpoint")
        return files
    if single.is_file():
        with _open(single) as fh:
            return {name: single for name in fh.keys()}
    if list(src.glob("*.bin")) or list(src.glob("*.pt")):
        raise VLAJaxError(
            f"{src} has only pickled torch weights (*.bin/*.pt); we never unpickle. "
            "Re-save it with save_pretrained(safe_serialization=True)"
        )
    raise VLAJaxError(f"{src} has neither model.safetensors nor model.safetensors.index.json")


def _open(path: Path):
    """`safe_open`, with a damaged or truncated file as one line instead of a Rust error."""
    try:
        return safe_open(path, framework="numpy")
    except Exception as err:  # SafetensorError (header), OSError: not a readable safetensors file
        raise VLAJaxError(f"{path} is not a readable safetensors file ({err}); re-download or re-save it") from None


def load_hf_checkpoint(src: str | Path, **knobs: Any) -> tuple[Kosmos2Config, dict]:
    """HF folder -> (config, params) in the scanned layout (float32 numpy leaves)."""
    src = Path(src)
    config = read_hf_config(src, **knobs)
    files = _tensor_files(src)
    shapes: dict[Any, Any] = traverse_util.flatten_dict(
        jax.eval_shape(lambda: init_params(config.replace(scan_layers=True))), sep="/"
    )
    rows = mapping_table(config)
    missing_rows = set(shapes) - {r.ours for r in rows}
    assert not missing_rows, f"mapping table misses {sorted(missing_rows)}"  # programming error

    handles: dict[Path, Any] = {}

    def handle(path: Path):
        if path not in handles:
            handles[path] = _open(path)
        return handles[path]

    # 1) names and shapes, before reading any data
    expected_names: set[str] = set()
    for row in rows:
        per_layer = shapes[row.ours].shape[1:] if row.num_layers else shapes[row.ours].shape
        want = hf_shape(tuple(per_layer), row.transform)
        for name in row.hf_names():
            expected_names.add(name)
            if name not in files:
                raise VLAJaxError(
                    f"tensor {name} is missing from the checkpoint in {src} "
                    f"(expected shape {list(want)}); the checkpoint is incomplete or not Kosmos-2"
                )
            got = tuple(handle(files[name]).get_slice(name).get_shape())
            if got != want:
                raise VLAJaxError(
                    f"tensor {name} in {files[name].name} has shape {list(got)}, expected {list(want)} "
                    f"from {src / 'config.json'}; config and weights disagree"
                )
    unexpected = sorted(set(files) - expected_names - set(IGNORED_HF_TENSORS))
    if unexpected:
        shown = ", ".join(unexpected[:5]) + (f" (+{len(unexpected) - 5} more)" if len(unexpected) > 5 else "")
        raise VLAJaxError(
            f"{src} has {len(unexpected)} tensor(s) this Kosmos-2 does not use: {shown}; "
            "refusing to drop weights silently (is this a different architecture?)"
        )

    # 2) data
    flat: dict[str, np.ndarray] = {}
    for row in rows:
        arrays = []
        for name in row.hf_names():
            try:
                arr = handle(files[name]).get_tensor(name)
            except Exception as err:  # e.g. bf16 tensors that numpy cannot hold
                raise VLAJaxError(f"cannot read tensor {name} from {files[name]}: {err}") from err
            arr = np.asarray(arr, dtype=np.float32)
            if not np.isfinite(arr).all():
                raise VLAJaxError(
                    f"tensor {name} in {files[name]} holds {int((~np.isfinite(arr)).sum())} non-finite "
                    "value(s) (NaN/inf); the checkpoint is damaged: re-download it"
                )
            arrays.append(np.ascontiguousarray(to_ours(arr, row.transform)))
        flat[row.ours] = np.stack(arrays) if row.num_layers else arrays[0]
    params = traverse_util.unflatten_dict(flat, sep="/")
    if not config.scan_layers:
        params = unstack_layers(params)
    return config, params
