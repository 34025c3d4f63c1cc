"""Config files and ``--config.key=value`` overrides (ml_collections' config flags, big_vision style).

A config file is a Python module with ``get_config(arg=None) -> ConfigDict``;
``--config configs/x.py:ARG`` passes ``ARG``. It starts from
`vla_jax.train.defaults.base_config`, so every key exists before the command
line is read. Overrides are parsed by ml_collections' `config_flags` (absl
flags), typed by the field they replace: ``--config.num_steps=1e3`` is an error
rather than a float where an int belongs, ``--config.model.head=gpt`` a string,
tuples as ``'(1, 2)'``. What we add: an unknown key is one line listing the
closest valid keys, a bad value one line naming the expected type, and
``--config.group={'a': 1}`` sets the group's fields one by one instead of
replacing the group.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.util
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import ml_collections
from absl import flags
from ml_collections import config_flags

from data_pipelines import loader
from vla_jax.errors import VLAJaxError
from vla_jax.vla import VLAConfig

PREFIX = "--config."


def call_config_file(
    spec: str, entry: str = "get_config", what: str = "config file", returns: str = "ConfigDict"
) -> Any:
    """``FILE[:ARG]`` -> ``FILE.entry(ARG)`` (``entry()`` without ARG); a missing or broken file is one line."""
    path_str, _, arg = spec.partition(":")
    path = Path(path_str)
    example = "configs/NAME.py" if entry == "get_config" else "configs/study_NAME.py"
    if not path.is_file():
        raise VLAJaxError(f"{what} {path} not found; pass --config {example} (see configs/ for the shipped ones)")
    module_spec = importlib.util.spec_from_file_location(f"vla_jax_config_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise VLAJaxError(f"{what} {path} is not a Python module; pass --config {example}")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:  # a broken config file is the user's to fix: say which and why
        raise VLAJaxError(f"{what} {path} failed to load: {type(err).__name__}: {err}") from err
    if not hasattr(module, entry):
        raise VLAJaxError(f"{what} {path} defines no {entry}(); add `def {entry}(arg=None) -> {returns}`")
    return getattr(module, entry)(arg) if arg else getattr(module, entry)()


def load_config_file(spec: str) -> ml_collections.ConfigDict:
    path = Path(spec.partition(":")[0])
    config = call_config_file(spec)
    if not isinstance(config, ml_collections.ConfigDict):
        raise VLAJaxError(f"config file {path}: get_config() returned {type(config).__name__}, not a ConfigDict")
    check_data_config(config, str(path))
    return with_model_defaults(config)


def with_model_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Every `VLAConfig` field the file's ``config.model`` leaves out, at VLAConfig's default, so each model knob can
    be overridden on the command line (``--config.model.discrete_decoding=parallel``) whichever fields a config file
    sets. Fields whose default is None stay out: an override could not be typed from them."""
    if "backbone" not in config.model:  # not a policy config (nothing to complete)
        return config
    for field in dataclasses.fields(VLAConfig):
        if field.name == "backbone" or field.name in config.model:
            continue
        default = field.default if field.default is not dataclasses.MISSING else None
        if default is not None:
            config.model[field.name] = default
    return config


def check_data_config(config: ml_collections.ConfigDict, where: str) -> None:
    """config.data.config holds loader fields only, and never the shapes the model implies."""
    data_section: Any = config.get("data", {})
    data = data_section.get("config", {})
    keys = set(data.keys()) if isinstance(data, ml_collections.ConfigDict) else set()
    derived = sorted(keys & set(loader.SHAPE_KEYS))
    if derived:
        raise VLAJaxError(
            f"{where}: config.data.config sets {', '.join(derived)}; data shapes derive from the model "
            "(config.model.window_size / action_chunk / action_dim, the backbone's image_size, "
            "config.data.instruction_length): remove them there"
        )
    unknown = sorted(keys - set(loader.DEFAULTS))
    if unknown:
        raise VLAJaxError(
            f"{where}: config.data.config has unknown field(s) {unknown}; valid fields: "
            f"{sorted(set(loader.DEFAULTS) - set(loader.SHAPE_KEYS))}"
        )


def flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, ml_collections.ConfigDict):
            keys.extend(flat_keys(value, dotted + "."))
    return keys


def _lookup(config: ml_collections.ConfigDict, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node[part]
    return node


def _unknown_key(config: ml_collections.ConfigDict, key: str) -> VLAJaxError:
    leaf = key.rsplit(".", 1)[-1]
    if key.startswith("data.config.") and leaf in loader.SHAPE_KEYS:
        target = (
            "model.backbone.vision.image_size"
            if leaf == "image_size"
            else ("data.instruction_length" if leaf == "instruction_length" else f"model.{leaf}")
        )
        return VLAJaxError(f"unknown config key {key!r}; data shapes derive from the model: set --config.{target}")
    close = difflib.get_close_matches(key, flat_keys(config), n=5, cutoff=0.5)
    hint = f"did you mean: {', '.join(close)}?" if close else f"valid top-level keys: {', '.join(config.keys())}"
    return VLAJaxError(f"unknown config key {key!r}; {hint}")


def override_tokens(overrides: Iterable[tuple[str, str] | str]) -> list[str]:
    """``--config.k=v`` tokens from (key, value) pairs or command-line tokens (``--config.k v`` joined)."""
    items = list(overrides)
    tokens: list[str] = []
    i = 0
    while i < len(items):
        item, following = items[i], items[i + 1] if i + 1 < len(items) else None
        if isinstance(item, tuple):
            tokens.append(f"{PREFIX}{item[0]}={item[1]}")
        elif (
            item.startswith(PREFIX)
            and "=" not in item
            and isinstance(following, str)
            and not following.startswith("--")
        ):
            tokens.append(f"{item}={following}")
            i += 1
        else:
            tokens.append(item)
        i += 1
    return tokens


def _expand_groups(config: ml_collections.ConfigDict, tokens: Sequence[str]) -> list[str]:
    """--config.group={'a': 1} -> --config.group.a=1 (ml_collections would replace the whole group)."""
    out = []
    for token in tokens:
        key, _, text = token[len(PREFIX) :].partition("=")
        try:
            current = _lookup(config, key)
        except (KeyError, AttributeError):
            raise _unknown_key(config, key) from None
        if not isinstance(current, ml_collections.ConfigDict):
            out.append(token)
            continue
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = None
        if not isinstance(value, dict):
            first = next(iter(current.keys()), "KEY")
            raise VLAJaxError(f"--config.{key} is a group; set one of its fields, e.g. --config.{key}.{first}=...")
        out.extend(
            _expand_groups(
                config, [f"{PREFIX}{key}.{k}={v if isinstance(v, str) else repr(v)}" for k, v in value.items()]
            )
        )
    return out


def apply_overrides(
    config: ml_collections.ConfigDict, overrides: Iterable[tuple[str, str] | str]
) -> ml_collections.ConfigDict:
    """Set ``--config.KEY=VALUE`` overrides on ``config`` in place (through ml_collections' config flags)."""
    tokens = override_tokens(overrides)
    rest = [t for t in tokens if not t.startswith(PREFIX)]
    if rest:
        raise VLAJaxError(f"unrecognized arguments: {' '.join(rest)} (config fields are set with --config.KEY=VALUE)")
    tokens = _expand_groups(config, tokens)
    if not tokens:
        return config
    argv = ["vla-jax", *tokens]
    values = flags.FlagValues()
    try:
        config_flags.DEFINE_config_dict("config", config, flag_values=values, lock_config=False, sys_argv=argv)
        values(argv)
    except flags.IllegalFlagValueError as err:
        key = str(err).split("=", 1)[0].removeprefix("flag --config.")
        parent, _, leaf = key.rpartition(".")
        holder = _lookup(config, parent) if parent else config
        current, kind = holder[leaf], holder.get_type(leaf).__name__  # placeholders know their type too
        text = next((t.split("=", 1)[1] for t in reversed(tokens) if t.startswith(f"{PREFIX}{key}=")), "")
        raise VLAJaxError(f"--config.{key}={text!r}: expected a {kind} like the default {current!r}") from None
    except flags.Error as err:
        raise VLAJaxError(f"config overrides: {err}") from None
    return config


def load_config(spec: str, overrides: Iterable[tuple[str, str] | str] = ()) -> ml_collections.ConfigDict:
    return apply_overrides(load_config_file(spec), overrides)
