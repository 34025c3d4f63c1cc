"""Dataset and mixture names: one namespace, aliases, and registering datasets from a user's own file.

A name means one thing. Datasets (by their published tfds name, plus aliases such as the
directory name Octo/OpenVLA's copies use) and mixtures share one namespace, so a mixture
can never shadow a dataset: registering a clash is a `DataError`. A dataset name is also a
one-dataset mixture, so `--mixture NAME` reaches every registered dataset.

Your own dataset, without editing the package (the built-in OXE entries live in
`data_pipelines.oxe_registry`, which registers them when the `data_pipelines` package is imported,
so every lookup and every user registration sees them; the registry itself imports none of them):

    data_pipelines.registry.load_user_registry("my_registry.toml")   # or .json, or a .py file

A `.py` file is run and calls `register(...)` / `register_mixture(...)` itself (any
standardization code). A `.toml` / `.json` file declares datasets whose action is slices
of one float vector, which covers datasets written with the RLDS dataset-builder template:

    [[dataset]]
    name = "my_robot_data"                  # tfds directory name under --data-dir
    image_key = "image"                     # steps/observation/<image_key>
    language_key = "language_instruction"   # path inside a step
    action_key = "action"                   # path inside a step: a float vector
    continuous = [0, 6]                     # [start, stop) of the vector's continuous dims
    gripper_index = 6                       # optional
    gripper = "[-1 open, +1 close]"         # its convention; the pipeline maps it to [0 closed, 1 open]
    proprio_key = "observation/state"       # optional: statistics are computed for it too
    proprio_dim = 8                         # its width (with proprio_key)
    train_split = "train"                   # default "train"; hold out explicitly, e.g. "train[:95%]"
    val_split = "val"                       # default: the files' `val` split if any, else none (never silent)
    statistics = "stats/my_robot.json"      # optional: precomputed action statistics (relative to this file)

    [mixture]
    my_mix = [["my_robot_data", 1.0], ["bridge_dataset", 0.5]]
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import runpy
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from data_pipelines import action_spaces
from data_pipelines.action_spaces import ActionSpace
from data_pipelines.errors import DataError
from data_pipelines.schema import Leaf, split_path


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """How to read one RLDS dataset: keys, standardization, declared action space, splits.

    `standardize` gets the episode's steps as a dict of tensors with a leading time axis and
    returns it with `action` float32 [n, action_space.dim] (gripper last, in the declared
    convention) and, when `proprio_dim` is set, `proprio` float32 [n, proprio_dim].
    `expects` maps the step paths the standardization reads to the leaf it was written for
    (`schema.Leaf` or its text form, e.g. "float32[3]"); they are checked when the dataset is
    opened, before any TensorFlow op runs.
    """

    name: str
    image_key: str
    language_key: str | None
    standardize: Callable[[dict], dict]
    action_space: ActionSpace = action_spaces.PRESETS["eef7"]  # or a preset's name ("nav2"), resolved on creation
    train_split: str = "train"
    # None: the files' `val` split if they have one, else none (no silent hold-out; eval-offline says so).
    # Hold episodes out explicitly: train_split="train[:95%]", val_split="train[95%:]".
    val_split: str | None = None
    fixed_instruction: str | None = None  # for datasets without language (e.g. toto)
    builder_name: str | None = None  # tfds directory name when it differs from `name`
    aliases: tuple[str, ...] = ()  # other names (and directory names) of the same dataset
    wrist_image_key: str | None = None  # declared for multi-camera models; the batch carries `image_key`
    proprio_dim: int | None = None
    expects: Mapping[str, Leaf] = dataclasses.field(default_factory=dict)  # or text forms, parsed on creation
    schema_source: str | None = None  # where the expected feature structure is published
    # Statistics source: None = computed over train_split (cached); a JSON file path = use those numbers
    # ({"action": {mean, std, min, max, q01, q99}} of the standardized action, e.g. `vla-jax stats` output).
    statistics_file: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "action_space", action_spaces.resolve(self.action_space))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        expects = {k: v if isinstance(v, Leaf) else Leaf.parse(v) for k, v in dict(self.expects).items()}
        object.__setattr__(self, "expects", expects)

    @property
    def tfds_name(self) -> str:
        return self.builder_name or self.name

    @property
    def directory_names(self) -> tuple[str, ...]:
        """Folder names to look for under --data-dir, in order (the published name first)."""
        return tuple(dict.fromkeys((self.tfds_name, *self.aliases)))

    @property
    def action_dim(self) -> int:
        return self.action_space.dim

    @property
    def normalize_mask(self) -> list[bool]:
        return self.action_space.normalize_mask

    def transform_id(self) -> str:
        """Hash of the standardization code and declarations, so cached statistics follow code changes."""
        try:
            src = inspect.getsource(self.standardize)
        except (OSError, TypeError):
            src = repr(self.standardize)
        blob = (
            f"{src}|{getattr(self.standardize, '__qualname__', '')}|{self.action_space.describe()}|"
            f"{self.image_key}|{self.language_key}|{self.proprio_dim}|"
            f"{sorted((k, str(v)) for k, v in self.expects.items())}"
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


REGISTRY: dict[str, DatasetSpec] = {}
MIXTURES: dict[str, list[tuple[str, float]]] = {}
_ALIASES: dict[str, str] = {}  # alias -> dataset name


def _owner(name: str) -> str | None:
    """What `name` already means: 'dataset X', 'mixture X' or None."""
    if name in REGISTRY:
        return f"dataset {name}"
    if name in _ALIASES:
        return f"dataset {_ALIASES[name]} (alias)"
    if name in MIXTURES:
        return f"mixture {name}"
    return None


def register(spec: DatasetSpec, overwrite: bool = False) -> DatasetSpec:
    """Add a dataset under its name and aliases; any clash with another dataset or a mixture is an error."""
    if overwrite and spec.name in REGISTRY:
        unregister(spec.name)
    for name in (spec.name, *spec.aliases):
        taken = _owner(name)
        if taken:
            hint = (
                "; pass overwrite=True to replace it"
                if taken == f"dataset {spec.name}"
                else "; names are one namespace for datasets and mixtures: pick another name"
            )
            raise DataError(f"cannot register dataset {spec.name}: the name {name!r} is already {taken}{hint}")
    REGISTRY[spec.name] = spec
    _ALIASES.update({a: spec.name for a in spec.aliases if a != spec.name})
    return spec


def unregister(name: str) -> None:
    spec = REGISTRY.pop(name)
    for alias in spec.aliases:
        _ALIASES.pop(alias, None)


def register_mixture(name: str, entries: Sequence[tuple[str, float]], overwrite: bool = False) -> None:
    taken = _owner(name)
    if taken and not (overwrite and taken == f"mixture {name}"):
        hint = (
            "pass overwrite=True to replace it"
            if taken.startswith("mixture")
            else "datasets and mixtures share one namespace: pick another mixture name"
        )
        raise DataError(f"cannot register mixture {name}: the name is already {taken}; {hint}")
    resolved = []
    for ds, w in entries:
        if float(w) <= 0:
            raise DataError(f"mixture {name}: weight of {ds} is {w}; weights must be > 0")
        resolved.append((get_spec(ds).name, float(w)))
    MIXTURES[name] = resolved


def get_spec(name: str) -> DatasetSpec:
    name = _ALIASES.get(name, name)
    if name not in REGISTRY:
        raise DataError(
            f"dataset {name!r} is not registered; known: {sorted(REGISTRY)}; register it with "
            "data_pipelines.registry.register(DatasetSpec(...)) or load_user_registry(FILE)"
        )
    return REGISTRY[name]


def get_mixture(name_or_entries) -> list[tuple[str, float]]:
    """A mixture name, a registered dataset name (or alias), or an explicit [(name, weight)] list."""
    if isinstance(name_or_entries, str):
        if name_or_entries in MIXTURES:
            return list(MIXTURES[name_or_entries])
        if name_or_entries in REGISTRY or name_or_entries in _ALIASES:
            return [(get_spec(name_or_entries).name, 1.0)]
        raise DataError(
            f"mixture {name_or_entries!r} is unknown; choose one of {sorted(MIXTURES)} or a "
            "registered dataset name, or register it with registry.register_mixture"
        )
    return [(get_spec(str(n)).name, float(w)) for n, w in name_or_entries]


def balance_weights(entries: Sequence[tuple[str, float]], transitions: Sequence[int]) -> list[float]:
    """Weights multiplied by each dataset's transition count, normalised to sum 1.

    With `balance_weights=True` a weight means "relative importance per
    transition" rather than "share of the batch", so big datasets are not
    starved and tiny ones are not repeated hundreds of times.
    """
    raw = [w * max(int(n), 0) for (_, w), n in zip(entries, transitions)]
    total = sum(raw)
    if total <= 0:
        raise DataError(f"cannot balance mixture {[n for n, _ in entries]}: all transition counts are zero")
    return [r / total for r in raw]


# ---------------------------------------------------------------- a user's own registry file
_DATASET_KEYS = {
    "name",
    "image_key",
    "language_key",
    "action_key",
    "continuous",
    "gripper_index",
    "gripper",
    "proprio_key",
    "proprio_dim",
    "train_split",
    "val_split",
    "fixed_instruction",
    "builder_name",
    "aliases",
    "wrist_image_key",
    "statistics",
}


def _read_table(path: str) -> dict:
    with open(path, "rb") as f:
        raw = f.read()
    try:
        if path.endswith(".toml"):
            return tomllib.loads(raw.decode())
        return json.loads(raw)
    except ValueError as err:
        raise DataError(f"{path}: not valid {'TOML' if path.endswith('.toml') else 'JSON'} ({err})") from err


def vector_standardization(
    action_key: str, start: int, stop: int, gripper_index: int | None, proprio_key: str | None
) -> Callable[[dict], dict]:
    """A standardization taking dims [start, stop) (+ the gripper dim) of one float vector per step."""

    def standardize(steps):
        import tensorflow as tf

        a = tf.cast(get_path(steps, action_key, "steps"), tf.float32)
        parts = [a[:, start:stop]] + ([a[:, gripper_index : gripper_index + 1]] if gripper_index is not None else [])
        out = {**steps, "action": tf.concat(parts, -1)}
        if proprio_key:
            out["proprio"] = tf.cast(get_path(steps, proprio_key, "steps"), tf.float32)
        return out

    standardize.__qualname__ = f"vector[{action_key}:{start}:{stop}:{gripper_index}:{proprio_key}]"
    return standardize


def _relative_to(path: str | None, base_dir: str) -> str | None:
    """A path declared in a registry file, relative to that file's folder (absolute and gs:// paths as given)."""
    if path is None or os.path.isabs(path) or "://" in path:
        return path
    return os.path.join(base_dir, path)


def _declared_spec(entry: dict, where: str, base_dir: str = ".") -> DatasetSpec:
    unknown = sorted(set(entry) - _DATASET_KEYS)
    missing = [k for k in ("name", "image_key", "action_key", "continuous") if k not in entry]
    if unknown or missing:
        raise DataError(
            f"{where}: {'unknown key(s) ' + str(unknown) if unknown else ''}"
            f"{'; ' if unknown and missing else ''}{'missing key(s) ' + str(missing) if missing else ''}; "
            f"valid keys: {sorted(_DATASET_KEYS)}"
        )
    start, stop = (int(x) for x in entry["continuous"])
    grip = entry.get("gripper_index")
    if (grip is None) != (entry.get("gripper") is None):
        raise DataError(f"{where}: give both `gripper_index` and `gripper` (its convention), or neither")
    # The vector's width is not declared: slicing past it is caught by the action-shape check at open time.
    expects = {entry["action_key"]: Leaf(dtype="float", shape=(None,))}
    space = ActionSpace(continuous=stop - start, gripper=entry.get("gripper"))
    proprio = entry.get("proprio_key")
    if (proprio is None) != (entry.get("proprio_dim") is None):
        raise DataError(f"{where}: give both `proprio_key` and `proprio_dim` (its width), or neither")
    return DatasetSpec(
        name=entry["name"],
        image_key=entry["image_key"],
        language_key=entry.get("language_key"),
        standardize=vector_standardization(
            entry["action_key"], start, stop, None if grip is None else int(grip), proprio
        ),
        action_space=space,
        train_split=entry.get("train_split", "train"),
        val_split=entry.get("val_split"),
        fixed_instruction=entry.get("fixed_instruction"),
        builder_name=entry.get("builder_name"),
        aliases=tuple(entry.get("aliases", ())),
        wrist_image_key=entry.get("wrist_image_key"),
        proprio_dim=None if proprio is None else int(entry["proprio_dim"]),
        expects=expects,
        schema_source=where,
        statistics_file=_relative_to(entry.get("statistics"), base_dir),
    )


_LOADED_FILES: dict[tuple[str, bytes], list[str]] = {}  # (path, content hash) -> the names it registered


def load_user_registry(path: str) -> list[str]:
    """Register the datasets and mixtures of a user's file (.py, .toml or .json); returns the new names.

    Loading the same unchanged file again (two commands in one process) is a no-op; a changed
    file, or another file, that names a registered dataset again is a clash (`DataError`).
    """
    if not os.path.isfile(path):
        raise DataError(
            f"registry file {path} not found; pass a .py, .toml or .json file (see data_pipelines/registry.py)"
        )
    with open(path, "rb") as f:
        loaded = (os.path.realpath(path), hashlib.sha256(f.read()).digest())
    if loaded in _LOADED_FILES and all(_owner(n) for n in _LOADED_FILES[loaded]):
        return list(_LOADED_FILES[loaded])
    names = _register_file(path)
    _LOADED_FILES[loaded] = names
    return names


def _register_file(path: str) -> list[str]:
    before = set(REGISTRY) | set(MIXTURES)
    if path.endswith(".py"):
        runpy.run_path(path, run_name="vla_jax_user_registry")
    elif path.endswith((".toml", ".json")):
        table = _read_table(path)
        unknown = sorted(set(table) - {"dataset", "mixture"})
        if unknown:
            raise DataError(f"{path}: unknown section(s) {unknown}; use [[dataset]] entries and a [mixture] table")
        for i, entry in enumerate(table.get("dataset", [])):
            where = f"{path} dataset #{i + 1} ({entry.get('name', '?')})"
            register(_declared_spec(entry, where, os.path.dirname(os.path.abspath(path))))
        for name, entries in table.get("mixture", {}).items():
            register_mixture(name, [tuple(e) for e in entries])
    else:
        raise DataError(f"registry file {path}: use a .py, .toml or .json file")
    return sorted((set(REGISTRY) | set(MIXTURES)) - before)


# ---------------------------------------------------------------- helpers shared by standardizations
def get_path(tree: dict, path: str, where: str = "") -> Any:
    """`tree["a"]["b"]` for path "a/b" (a key that itself contains a slash is written "[x/y]")."""
    node = tree
    for part in split_path(path):
        if not isinstance(node, dict) or part not in node:
            keys = sorted(node.keys()) if isinstance(node, dict) else type(node).__name__
            raise DataError(
                f"{where}: missing key `{path}` (at `{part}`; found {keys}); "
                "fix image_key/language_key in the dataset's registry entry"
            )
        node = node[part]
    return node
