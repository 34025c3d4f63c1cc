"""Read a Hugging Face checkpoint folder (config.json + safetensors, sharded or not) into our params.

The family comes from config.json's `model_type` (`vla_jax.models.backbone` registry); missing
config keys get transformers' own defaults (its config class parses the file, no torch needed).
Tensors are read with `safetensors` (numpy framework, bf16 included), one at a time, after every
name and shape has been checked against the family's mapping table. Anything wrong is a
`VLAJaxError` naming the file and tensor; nothing is ever silently left at a random init.

Unexpected tensors are an ERROR, not a warning: an extra tensor means the checkpoint is a variant
we do not implement (e.g. cross-attention layers, an untied LM head), and dropping it silently
would give a model that is not the checkpoint. The tables list what is deliberately not loaded.

`num_layers=N` truncates the vision tower and the LM to their first N layers (real widths, vocab
and heads), reading only those layers' tensors: how a 3B checkpoint's mapping is verified on a
machine that cannot hold it twice.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from flax import traverse_util
from safetensors import safe_open

from vla_jax.convert.table import hf_shape, to_ours
from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.clip_kosmos2 import ClipKosmos2Config
from vla_jax.models.stacking import unstack_layers


def read_config_json(src: str | Path) -> dict[str, Any]:
    path = Path(src) / "config.json"
    if not path.is_file():
        raise VLAJaxError(f"{path} not found: --src must be a Hugging Face model folder (save_pretrained output)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise VLAJaxError(f"{path} is not valid JSON ({err})") from err


def with_hf_defaults(d: dict[str, Any], where: Path) -> dict[str, Any]:
    """config.json as transformers' config class fills it in (save_pretrained omits default values)."""
    import transformers

    try:
        return transformers.AutoConfig.for_model(**d).to_dict()
    except (ValueError, TypeError, KeyError) as err:
        raise VLAJaxError(f"{where}: transformers cannot parse this config ({err})") from err


def read_hf_config(src: str | Path, **knobs: Any):
    """HF folder -> our backbone config (family from `model_type`). `knobs`: dtype, scan_layers, remat."""
    path = Path(src) / "config.json"
    d = read_config_json(src)
    # convert-hf writes our model_type next to HF's for families HF has none for (the hybrid)
    key = d.get("vla_jax_model_type") or d.get("model_type")
    if key not in backbone_lib.SUPPORTED_MODEL_TYPES or key == d.get("model_type") == "clip-kosmos-2":
        supported = [t for t in backbone_lib.SUPPORTED_MODEL_TYPES if t != "clip-kosmos-2"]
        raise VLAJaxError(
            f"{path}: model_type {d.get('model_type')!r} is not supported; supported: "
            f"{', '.join(supported)} (clip-kosmos-2: a kosmos-2 --src with a CLIP --vision-src)"
        )
    family = backbone_lib.family(key)
    try:
        return family.config_cls.from_hf_dict(with_hf_defaults(d, path), **knobs)
    except VLAJaxError as err:
        raise VLAJaxError(f"{path}: {err}") from err


def tensor_files(src: Path) -> dict[str, Path]:
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


def _renamed(files: dict[str, Path], renames) -> dict[str, tuple[str, Path]]:
    """Current HF name -> (name in the file, file), applying a family's legacy prefix renames."""
    out: dict[str, tuple[str, Path]] = {}
    for name, path in files.items():
        new = name
        for old, repl in renames:
            if name.startswith(old):
                new = repl + name[len(old) :]
                break
        if new in out:
            raise VLAJaxError(
                f"{path.parent}: tensors {out[new][0]} and {name} both name {new}; the checkpoint mixes naming schemes"
            )
        out[new] = (name, path)
    return out


def _is_ignored(name: str, ignored: dict[str, str]) -> bool:
    return name in ignored or any(k.endswith(".") and name.startswith(k) for k in ignored)


def truncated(config, num_layers: int | None):
    """The config with vision and LM cut to their first `num_layers` layers (None: unchanged)."""
    if num_layers is None:
        return config
    if num_layers < 1:
        raise VLAJaxError(f"--num-layers {num_layers} must be >= 1")
    if hasattr(config, "truncated"):  # a family whose LM cannot be cut at any block (IDEFICS: whole groups)
        return config.truncated(num_layers)
    text_key = "layers" if hasattr(config.text, "layers") else "num_hidden_layers"
    text_n = getattr(config.text, text_key)
    return config.replace(
        vision={"num_hidden_layers": min(num_layers, config.vision.num_hidden_layers)},
        text={text_key: min(num_layers, text_n)},
    )


def read_tensors(
    config,
    rows,
    sources: dict[str, Path],
    *,
    ignored: dict[str, dict[str, str]],
    renames: dict[str, tuple] | None = None,
    full_rows=None,
    fresh: tuple[str, ...] = (),
) -> dict:
    """Check names and shapes of every row against `sources`, then read them -> params (scanned layout).

    `full_rows`: the rows of the untruncated config; their tensors that `rows` does not use (layers
    past the truncation) are expected, not unexpected. `fresh`: our paths initialised randomly.
    """
    shapes: dict[Any, Any] = traverse_util.flatten_dict(
        backbone_lib.param_shapes(config.replace(scan_layers=True)), sep="/"
    )
    missing_rows = set(shapes) - {r.ours for r in rows} - set(fresh)
    assert not missing_rows, f"mapping table misses {sorted(missing_rows)}"  # programming error
    files = {s: _renamed(tensor_files(p), (renames or {}).get(s, ())) for s, p in sources.items()}
    handles: dict[Path, Any] = {}

    def handle(path: Path):
        if path not in handles:
            handles[path] = _open(path)
        return handles[path]

    # 1) names and shapes, before reading any data
    expected: dict[str, set[str]] = {s: set() for s in sources}
    for row in rows:
        src = sources[row.source]
        per_layer = shapes[row.ours].shape[1:] if row.num_layers else shapes[row.ours].shape
        want = hf_shape(tuple(per_layer), row.transform)
        for name in row.hf_names():
            expected[row.source].add(name)
            if name not in files[row.source]:
                raise VLAJaxError(
                    f"tensor {name} is missing from the checkpoint in {src} (expected shape "
                    f"{list(want)}); the checkpoint is incomplete or not {config.model_type}"
                )
            stored, path = files[row.source][name]
            got = tuple(handle(path).get_slice(stored).get_shape())
            if got != want:
                raise VLAJaxError(
                    f"tensor {stored} in {path.name} has shape {list(got)}, expected {list(want)} "
                    f"from {src / 'config.json'}; config and weights disagree"
                )
    for row in full_rows or ():
        expected[row.source].update(row.hf_names())
    for s, src in sources.items():
        unexpected = sorted(n for n in set(files[s]) - expected[s] if not _is_ignored(n, ignored.get(s, {})))
        if unexpected:
            shown = ", ".join(unexpected[:5]) + (f" (+{len(unexpected) - 5} more)" if len(unexpected) > 5 else "")
            raise VLAJaxError(
                f"{src} has {len(unexpected)} tensor(s) this {config.model_type} does not use: "
                f"{shown}; refusing to drop weights silently (is this a different architecture?)"
            )

    # 2) data
    flat: dict[str, np.ndarray] = {}
    for row in rows:
        arrays = []
        for name in row.hf_names():
            stored, path = files[row.source][name]
            try:
                arr = handle(path).get_tensor(stored)
            except Exception as err:  # e.g. a dtype numpy cannot hold
                raise VLAJaxError(f"cannot read tensor {stored} from {path}: {err}") from err
            arr = np.asarray(arr, dtype=np.float32)
            if not np.isfinite(arr).all():
                raise VLAJaxError(
                    f"tensor {stored} in {path} holds {int((~np.isfinite(arr)).sum())} non-finite "
                    "value(s) (NaN/inf); the checkpoint is damaged: re-download it"
                )
            arrays.append(np.ascontiguousarray(to_ours(arr, row.transform)))
        flat[row.ours] = np.stack(arrays) if row.num_layers else arrays[0]
    for i, key in enumerate(fresh):  # LeCun-normal kernel, zero bias (Flax Dense's scheme), seeded; numpy: no compile
        shape = shapes[key].shape
        value = (
            np.random.default_rng(i).standard_normal(shape) / np.sqrt(shape[0])
            if key.endswith("kernel")
            else np.zeros(shape)
        )
        flat[key] = np.asarray(value, np.float32)
    return traverse_util.unflatten_dict(flat, sep="/")


def _table(config):
    return importlib.import_module(backbone_lib.family(config.model_type).table_module)


def load_hf_checkpoint(
    src: str | Path, *, vision_src: str | Path | None = None, num_layers: int | None = None, **knobs: Any
) -> tuple[Any, dict]:
    """HF folder(s) -> (config, float32 numpy params). ``vision_src``: a CLIP folder -> the CLIP + Kosmos-2 hybrid."""
    src = Path(src)
    if vision_src is not None:
        return _load_hybrid(src, Path(vision_src), num_layers=num_layers, **knobs)
    full = read_hf_config(src, **knobs)
    config = truncated(full, num_layers)
    table = _table(config)
    params = read_tensors(
        config,
        table.mapping_table(config),
        {"main": src},
        ignored={"main": table.ignored_hf_tensors(config)},
        renames={"main": table.LEGACY_RENAMES},
        full_rows=table.mapping_table(full) if num_layers else None,
    )
    return config, _layout(config, params)


def _load_hybrid(src: Path, vision_src: Path, *, num_layers: int | None, **knobs: Any):
    kosmos_d, clip_d = read_config_json(src), read_config_json(vision_src)
    if kosmos_d.get("model_type") != "kosmos-2":
        raise VLAJaxError(
            f"{src / 'config.json'}: --vision-src builds the CLIP + Kosmos-2 hybrid, so --src must be "
            f"a Kosmos-2 folder (model_type 'kosmos-2'), got {kosmos_d.get('model_type')!r}"
        )
    kosmos_d = with_hf_defaults(kosmos_d, src / "config.json")
    try:
        full = ClipKosmos2Config.from_hf_dicts(kosmos_d, with_hf_defaults(clip_d, vision_src / "config.json"), **knobs)
    except VLAJaxError as err:
        raise VLAJaxError(f"{vision_src / 'config.json'}: {err}") from err
    config = truncated(full, num_layers)
    table = _table(config)
    width = int(kosmos_d["vision_config"]["hidden_size"])
    params = read_tensors(
        config,
        table.mapping_table(config, width),
        {"main": src, "vision": vision_src},
        ignored={s: table.ignored_hf_tensors(config, s) for s in ("main", "vision")},
        renames={"vision": table.VISION_RENAMES},
        full_rows=table.mapping_table(full, width) if num_layers else None,
        fresh=tuple(table.fresh_rows(config, width)),
    )
    return config, _layout(config, params)


def _layout(config, params):
    if config.scan_layers:
        return params
    return unstack_layers(params)


def hf_param_names(config) -> list[str]:
    """Every HF tensor name of `config`'s table (what an export writes), for tests and the runtime."""
    return [n for r in _table(config).mapping_table(config) for n in r.hf_names()]
