"""Config files and ``--config.key=value`` overrides (ml_collections, big_vision style).

A config file is a Python module with ``get_config(arg=None) -> ConfigDict``;
``--config configs/x.py:ARG`` passes ``ARG``. Overrides are typed by the field
they replace (bool/int/float/str; tuples, lists, dicts and None via Python
literals), so ``--config.num_steps=1e3`` is an error rather than a float where
an int belongs. An unknown key is an error listing the closest valid keys.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
from pathlib import Path
from typing import Any

import ml_collections

from vla_jax.errors import VLAJaxError

PREFIX = "--config."


def load_config_file(spec: str) -> ml_collections.ConfigDict:
    path_str, _, arg = spec.partition(":")
    path = Path(path_str)
    if not path.is_file():
        raise VLAJaxError(f"config file {path} not found; pass --config configs/NAME.py (see configs/ for the shipped ones)")
    module_spec = importlib.util.spec_from_file_location(f"vla_jax_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:  # a broken config file is the user's to fix: say which and why
        raise VLAJaxError(f"config file {path} failed to load: {type(err).__name__}: {err}") from err
    if not hasattr(module, "get_config"):
        raise VLAJaxError(f"config file {path} defines no get_config(); add `def get_config(arg=None) -> ConfigDict`")
    config = module.get_config(arg) if arg else module.get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        raise VLAJaxError(f"config file {path}: get_config() returned {type(config).__name__}, not a ConfigDict")
    return config


def flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, ml_collections.ConfigDict):
            keys.extend(flat_keys(value, dotted + "."))
    return keys


def _parse_value(key: str, text: str, current: Any) -> Any:
    def literal():
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    try:
        if isinstance(current, bool):
            lowered = text.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, str):
            return text
    except ValueError:
        raise VLAJaxError(
            f"--config.{key}={text!r}: expected a {type(current).__name__} like the default {current!r}"
        ) from None
    value = literal()
    if isinstance(current, (tuple, list)) and not isinstance(value, (tuple, list)):
        raise VLAJaxError(f"--config.{key}={text!r}: expected a {type(current).__name__} such as {current!r}")
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    return value


def apply_override(config: ml_collections.ConfigDict, key: str, text: str) -> None:
    parts = key.split(".")
    node = config
    for i, part in enumerate(parts):
        is_last = i == len(parts) - 1
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            valid = flat_keys(config)
            close = difflib.get_close_matches(key, valid, n=5, cutoff=0.5)
            hint = f"did you mean: {', '.join(close)}?" if close else f"valid top-level keys: {', '.join(config.keys())}"
            raise VLAJaxError(f"unknown config key {key!r}; {hint}")
        if is_last:
            current = node[part]
            if isinstance(current, ml_collections.ConfigDict):
                value = _parse_value(key, text, None)
                if not isinstance(value, dict):
                    raise VLAJaxError(f"--config.{key} is a group; set one of its fields, e.g. --config.{key}.{next(iter(current.keys()))}=...")
                for sub_key, sub_value in value.items():
                    apply_override(config, f"{key}.{sub_key}", repr(sub_value) if not isinstance(sub_value, str) else sub_value)
                return
            value = _parse_value(key, text, current)
            with node.ignore_type():
                node[part] = value
        else:
            node = node[part]


def split_override_args(extras: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(``[(key, value)]`` from ``--config.k=v`` / ``--config.k v``, tokens that are not overrides)."""
    overrides, rest = [], []
    i = 0
    while i < len(extras):
        token = extras[i]
        if token.startswith(PREFIX):
            body = token[len(PREFIX):]
            if "=" in body:
                key, value = body.split("=", 1)
            elif i + 1 < len(extras):
                key, value = body, extras[i + 1]
                i += 1
            else:
                raise VLAJaxError(f"{token} has no value; write {token}=VALUE")
            overrides.append((key, value))
        else:
            rest.append(token)
        i += 1
    return overrides, rest


def load_config(spec: str, overrides: list[tuple[str, str]] = ()) -> ml_collections.ConfigDict:
    config = load_config_file(spec)
    for key, value in overrides:
        apply_override(config, key, value)
    return config
