"""Training workdir / Flax params -> a `vla_runtime` export folder (see runtime/vla_runtime/bundle.py).

`export_policy` is the core (tests call it with in-memory params);
`export_workdir` reads a `vla-jax train` workdir through
`vla_jax.train.checkpoint.load_for_inference` and calls it.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from flax import traverse_util
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from data_pipelines import paths as safe_paths
from data_pipelines import registry as data_registry
from data_pipelines.action_spaces import parse_gripper
from data_pipelines.errors import DataError
from data_pipelines.tokenize import load_tokenizer
from vla_jax.errors import VLAJaxError
from vla_jax.export import mapping
from vla_jax.train.checkpoint import load_for_inference
from vla_jax.train.model import preprocessing
from vla_jax.train.model import vla_config as make_vla_config
from vla_jax.vla import image_preprocessing
from vla_runtime.bundle import EXPORT_DTYPES, write_export
from vla_runtime.errors import RuntimeConfigError
from vla_runtime.policy_io import (
    CANONICAL_GRIPPER_TEXT,
    CHANNEL_ORDERS,
    RESIZE_MODES,
    ActionStatistics,
    TokenLayout,
)

# Written into the model card and config.json so a robot-side file says where it came from.
EXPORTER = "vla-jax export"
log = logging.getLogger("vla_jax")


def pick_statistics(statistics: Mapping[str, Any], dataset: str | None) -> dict[str, Any]:
    """loader.statistics ({name: {"action": ..., "normalization": mode, "gripper"?}}) -> the one dataset the robot runs.

    The dataset's declared gripper convention (`"gripper"`, from data_pipelines.rlds) is kept, so the
    runtime returns the gripper in the dataset's own convention; workdirs without it export as before.
    """
    if "action" in statistics and "normalization" in statistics:  # already a single dataset's entry
        return {"dataset": dataset or str(statistics.get("dataset", "")), **dict(statistics)}
    names = sorted(statistics)
    if not names:
        raise VLAJaxError("export: the workdir's statistics.json is empty; retrain so the loader records them")
    if dataset is None:
        if len(names) > 1:
            raise VLAJaxError(
                f"export: statistics hold several datasets {names}; pick the robot's one with --dataset NAME"
            )
        dataset = names[0]
    if dataset not in statistics:
        raise VLAJaxError(f"export: --dataset {dataset!r} is not in the statistics; choose one of {names}")
    entry = statistics[dataset]
    for key in ("action", "normalization"):
        if key not in entry:
            raise VLAJaxError(f"export: statistics of {dataset!r} lack {key!r}; retrain with the current loader")
    picked = {"dataset": dataset, "normalization": entry["normalization"], "action": entry["action"]}
    if entry.get("gripper") is not None:
        picked["gripper"] = entry["gripper"]
    return picked


def check_declared_action_space(picked: dict[str, Any]) -> dict[str, Any]:
    """The statistics against the dataset's registered action space (built in, or from `--registry FILE`).

    A gripper convention that differs from the declared one is an error (the registry changed since
    training); statistics written before the `"gripper"` key get the declared convention when the
    dims agree, so re-exporting such a workdir returns the dataset's own convention too. A dataset
    no registry knows exports with its statistics as they are.
    """
    try:
        space = data_registry.get_spec(picked["dataset"]).action_space
    except DataError:
        return picked
    dims = len(picked["action"]["min"])
    declared = None if space.gripper is None else str(space.gripper)
    if "gripper" in picked:
        convention = picked["gripper"].get("convention") if isinstance(picked["gripper"], dict) else None
        if declared is None or convention is None or str(parse_gripper(convention)) != declared:
            raise VLAJaxError(
                f"export: the workdir's statistics give dataset {picked['dataset']!r} the gripper convention "
                f"{convention!r} but its registry entry declares {declared or 'no gripper'}; export with "
                "the registry file it was trained with (--registry FILE)"
            )
        return picked
    if declared is not None and dims == space.dim:
        log.info("export: statistics of %s predate the gripper key; using its declared %s", picked["dataset"], declared)
        return {**picked, "gripper": {"convention": declared, "canonical": CANONICAL_GRIPPER_TEXT}}
    return picked


def synthetic_tokenizer_json(vocab_size: int) -> str:
    """A word-level tokenizer for workdirs trained on `data_pipelines.synthetic` (which has no text tokenizer).

    Ids follow the synthetic generator: <s>=0, <pad>=1, </s>=2, "left"=5, "right"=6, so
    "go left" -> [<s>, <unk>=3 ... ] keeps the side token meaningful; every other id is a placeholder word.
    """
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "left": 5, "right": 6}
    vocab.update({f"w{i}": i for i in range(7, vocab_size)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return tok.to_str()


def tokenizer_files(tokenizer: str | None, vocab_size: int) -> tuple[str, int]:
    """(tokenizer.json text, pad id) from a tokenizer folder; the synthetic one when `tokenizer` is None."""
    if tokenizer is None:
        return synthetic_tokenizer_json(vocab_size), 1
    try:
        tok = load_tokenizer(tokenizer)
    except DataError as err:
        raise VLAJaxError(f"export: {err}") from err
    if not getattr(tok, "is_fast", False):
        raise VLAJaxError(
            f"export: {tokenizer} holds a slow (python) tokenizer; the runtime needs tokenizer.json "
            "(save the fast tokenizer of the backbone there)"
        )
    backend = tok.backend_tokenizer
    if len(tok) > vocab_size:
        raise VLAJaxError(
            f"export: tokenizer in {tokenizer} has {len(tok)} ids but the model's vocab is "
            f"{vocab_size}; export with the tokenizer the model was trained with"
        )
    return backend.to_str(), int(tok.pad_token_id)


def policy_state_dict(vla_config, params: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The whole policy's Flax params -> the runtime's `PolicyModel` state dict (float32)."""
    params = dict(params)
    expected = {"backbone"} | ({"action_token", "head"} if vla_config.structure != "one_step_discrete" else set())
    if vla_config.parallel_decoding:
        expected.add("action_queries")
    missing = expected - set(params)
    if missing:
        raise VLAJaxError(f"export: params lack {sorted(missing)}; is this a vla_jax.vla.VLAPolicy checkpoint?")
    extra = set(params) - expected
    if extra:
        raise VLAJaxError(f"export: params have top-level entries {sorted(extra)} the runtime has no place for")
    state = {
        f"backbone.{k}": v for k, v in mapping.backbone_state_dict(params["backbone"], vla_config.backbone).items()
    }
    for name in sorted({"action_token", "action_queries"} & expected):
        state[name] = torch.from_numpy(np.asarray(params[name], np.float32).copy())
    head_cfg = {"head_layers": vla_config.head_layers}
    for k, v in mapping.head_state_dict(vla_config.head, params.get("head", {}), head_cfg).items():
        state[f"head.{k}"] = v
    return state


def runtime_policy_config(vla_config) -> dict[str, Any]:
    d = vla_config.to_dict()
    d.pop("backbone")
    return d


def model_card(
    vla_config, statistics: dict, dtype: str, source: str, extra: dict[str, Any], backbone_parameters: int
) -> str:
    p = vla_config
    a = statistics["action"]
    rows = "\n".join(
        f"| {i} | {a['min'][i]:.4g} | {a['max'][i]:.4g} | {a['mean'][i]:.4g} | {a['std'][i]:.4g} | "
        f"{'yes' if a.get('mask', [True] * len(a['min']))[i] else 'no (passed through)'} |"
        for i in range(len(a["min"]))
    )
    model_type = p.backbone.to_hf_dict()["model_type"]
    return f"""# VLA policy export

Vision-language-action policy on a `{model_type}` backbone, exported by `{EXPORTER}` on \
{datetime.date.today().isoformat()}
from `{source}`{(" (step " + str(extra["step"]) + ")") if extra.get("step") is not None else ""}.

| | |
|---|---|
| structure / head | {p.structure} / {p.head} |
| history window T / action chunk C / action dims A | {p.window_size} / {p.action_chunk} / {p.action_dim} |
| gripper | {_gripper_row(p, statistics)} |
| backbone | `{model_type}` (config.json `backbone`, run by transformers' class), {backbone_parameters:,} parameters |
| weights | {dtype} |
| statistics | dataset `{statistics["dataset"]}`, normalisation `{statistics["normalization"]}` |

Actions leave `Policy.step` in the robot's units (de-normalised with these
statistics, clipped to the range seen in training):

| dim | min | max | mean | std | normalised |
|---|---|---|---|---|---|
{rows}

## Run it

```python
from vla_runtime import Policy
policy = Policy.load("THIS_FOLDER", device="cuda")   # or "cpu"
policy.reset("your instruction")
chunk = policy.step(frame)   # frame: uint8 H x W x 3 (see preprocessing.json for the channel order)
```

or serve it: `vla-runtime serve THIS_FOLDER --port 8000`. Every file is hashed
in config.json; a changed file refuses to load.
"""


def _gripper_row(vla_config, statistics: dict) -> str:
    if not vla_config.has_gripper:
        return "none"
    if "gripper" in statistics:
        return f"last dim, in the dataset's convention {statistics['gripper']['convention']}"
    return "last dim, opening in [0, 1] (1 = open)"


def export_policy(
    vla_config,
    params: Mapping[str, Any],
    statistics: Mapping[str, Any],
    tokenizer: str | None,
    out_dir: str,
    dtype: str = "float32",
    *,
    instruction_length: int = 16,
    dataset: str | None = None,
    resize_mode: str = "resize",
    input_channel_order: str = "RGB",
    source: str = "in-memory params",
    step: int | None = None,
) -> dict[str, Any]:
    """Writes the export folder; returns its config.json content.

    tokenizer: folder AutoTokenizer can load (tokenizer.json inside), or None for a synthetic-data model.
    The folder's preprocessing, token layout and statistics are vla_runtime.policy_io objects written
    as they are: the runtime reads back exactly the parameters training used.
    """
    if dtype not in EXPORT_DTYPES:
        raise VLAJaxError(f"export: --dtype {dtype!r} is unknown; use one of {', '.join(EXPORT_DTYPES)}")
    if input_channel_order not in CHANNEL_ORDERS:
        raise VLAJaxError(f"export: --input-channel-order must be RGB or BGR, got {input_channel_order!r}")
    if resize_mode not in RESIZE_MODES:
        raise VLAJaxError(f"export: resize_mode {resize_mode!r} is unknown; use one of {', '.join(RESIZE_MODES)}")
    picked = check_declared_action_space(pick_statistics(statistics, dataset))
    try:  # policy_io's own load-time checks (finite, min <= max, q01 <= q99), before anything is written
        stats = ActionStatistics.from_dict(picked, f"statistics of {picked['dataset']!r}").to_dict()
    except RuntimeConfigError as err:
        raise VLAJaxError(f"export: {err}; nothing was written") from None
    if len(stats["action"]["min"]) > vla_config.action_dim:
        raise VLAJaxError(
            f"export: statistics of {stats['dataset']!r} have {len(stats['action']['min'])} action "
            f"dims but the model predicts {vla_config.action_dim}"
        )
    if "gripper" in stats and not (vla_config.has_gripper and len(stats["action"]["min"]) == vla_config.action_dim):
        raise VLAJaxError(
            f"export: dataset {stats['dataset']!r} declares a gripper (its last action dim) but the model "
            f"{'has no gripper output' if not vla_config.has_gripper else 'predicts ' + str(vla_config.action_dim)}"
            f" for its {len(stats['action']['min'])} dims; train with model.has_gripper=True and "
            "model.action_dim = the dataset's action dims"
        )
    tok_json, pad_id = tokenizer_files(tokenizer, vla_config.backbone.vocab_size)
    pre = image_preprocessing(vla_config, resize_mode, input_channel_order)
    layout = TokenLayout(instruction_length=int(instruction_length), pad_id=pad_id)
    check_finite_params(params)
    state = policy_state_dict(vla_config, params)
    extra = {"exporter": EXPORTER, "source": source, "step": step}
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise VLAJaxError(f"export: --out {out_dir} is a file, not a folder; pick a new folder")
    if os.path.exists(out_dir) and os.listdir(out_dir) and not os.path.isfile(os.path.join(out_dir, "config.json")):
        raise VLAJaxError(f"export: {out_dir} exists and is not an export folder; pick an empty or new --out")
    # Written next to --out, then swapped in: an existing export stays whole until the new one is.
    parent = os.path.dirname(os.path.abspath(out_dir))
    try:
        os.makedirs(parent, exist_ok=True)
        staged = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out_dir))}.staging-", dir=parent)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staged, 0o777 & ~umask)  # mkdtemp's 0700 would outlive the rename
    except OSError as err:
        raise VLAJaxError(
            f"export: cannot write next to --out {out_dir} ({err.strerror or err}); pick a folder you can write to"
        ) from None
    try:
        written = write_export(
            staged,
            state_dict=state,
            policy_config=runtime_policy_config(vla_config),
            backbone_config=vla_config.backbone.to_hf_dict(),
            tokenizer_json=tok_json,
            tokenizer_config=layout.to_dict(),
            preprocessing=pre.to_dict(),
            statistics=stats,
            model_card=model_card(
                vla_config,
                stats,
                dtype,
                source,
                extra,
                sum(v.numel() for k, v in state.items() if k.startswith("backbone.")),
            ),
            dtype=dtype,
            extra=extra,
        )
        safe_paths.replace_dir(staged, out_dir)
    except RuntimeConfigError as err:  # e.g. a weight that overflows the export dtype
        raise VLAJaxError(f"export: {err}".replace(staged, out_dir)) from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return written


def check_finite_params(params: Mapping[str, Any]) -> None:
    """Refuses params holding NaN or inf, naming the first such tensor (Flax path)."""
    for path, leaf in traverse_util.flatten_dict(dict(params), sep="/").items():
        values = np.asarray(leaf)
        if np.issubdtype(values.dtype, np.inexact) and not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).sum())
            raise VLAJaxError(
                f"export: param {path} holds {bad} non-finite value(s) (NaN/inf); nothing was "
                "written. Export an earlier, finite checkpoint with --step N"
            )


def export_workdir(
    workdir: str,
    out_dir: str,
    *,
    step: int | None = None,
    dtype: str = "float32",
    dataset: str | None = None,
    tokenizer: str | None = None,
    input_channel_order: str = "RGB",
):
    """`vla-jax export`: (vla_config, params, config.json content) of the written export."""
    config, params, statistics = load_for_inference(workdir, step)
    vcfg = make_vla_config(config)
    data: Any = config.get("data", {})
    if tokenizer is None and data.get("source") != "synthetic":
        tokenizer = data.get("tokenizer") or None
        if tokenizer is None:
            raise VLAJaxError(f"export: {workdir}'s config names no tokenizer (data.tokenizer); pass --tokenizer DIR")
    written = export_policy(
        vcfg,
        params,
        statistics,
        tokenizer,
        out_dir,
        dtype,
        instruction_length=int(data.get("instruction_length", 16)),
        dataset=dataset,
        resize_mode=preprocessing(config).resize_mode,
        input_channel_order=input_channel_order,
        source=os.path.abspath(workdir),
        step=step,
    )
    return vcfg, params, written


def dump_json_line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True)
