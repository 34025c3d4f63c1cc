"""Open X-Embodiment registry: per-dataset keys + action standardization, and named mixtures.

Common action conventions (what every standardization function returns as "action"):

- `eef7`: [dx, dy, dz, droll, dpitch, dyaw, gripper], gripper absolute in [0, 1]
  with 1 = open. Only the 6 motion dims are normalised (the gripper mask is False).
- `nav2` / `nav3`: [linear_x, linear_y(, angular_z)] for mobile bases; all dims normalised.

A standardization function gets the episode's steps as a dict of tensors with a
leading time axis (the RLDS `steps` batched) and returns the same dict with
`action` replaced by a float32 [n, A] tensor (and, where needed, a decoded
`language_instruction`). Image and language are found through the spec's keys.

Adding your own dataset is one entry:

    from data_pipelines import oxe_registry as oxe
    oxe.register(oxe.DatasetSpec(
        name="my_robot_data",                      # tfds dataset directory name
        image_key="image",                         # steps/observation/<image_key>
        language_key="language_instruction",       # path inside a step ("observation/..." allowed)
        standardize=lambda s: {**s, "action": tf.concat([s["action"][:, :6], s["action"][:, 6:7]], -1)},
        action_encoding="eef7"))
    oxe.register_mixture("my_mix", [("my_robot_data", 1.0), ("bridge_dataset", 0.5)])
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from data_pipelines.errors import DataError

ENCODINGS = {"eef7": 7, "nav2": 2, "nav3": 3}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    image_key: str
    language_key: str | None
    standardize: Callable[[dict], dict]
    action_encoding: str = "eef7"
    train_split: str = "train[:95%]"
    val_split: str = "train[95%:]"
    fixed_instruction: str | None = None  # for datasets without language (e.g. toto)
    builder_name: str | None = None  # tfds directory name when it differs from `name`

    @property
    def tfds_name(self) -> str:
        return self.builder_name or self.name

    @property
    def action_dim(self) -> int:
        return ENCODINGS[self.action_encoding]

    @property
    def normalize_mask(self) -> list[bool]:
        """True = normalise; the eef7 gripper (already in [0, 1]) is left alone."""
        return [True] * 6 + [False] if self.action_encoding == "eef7" else [True] * self.action_dim

    def transform_id(self) -> str:
        """Hash of the standardization code, so cached statistics follow code changes."""
        try:
            src = inspect.getsource(self.standardize)
        except (OSError, TypeError):
            src = repr(self.standardize)
        blob = f"{src}|{self.action_encoding}|{self.image_key}|{self.language_key}"
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- tf helpers
def _tf():
    import tensorflow as tf

    return tf


def get_path(tree: dict, path: str, where: str = "") -> Any:
    node = tree
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            keys = sorted(node.keys()) if isinstance(node, dict) else type(node).__name__
            raise DataError(
                f"{where}: missing key `{path}` (at `{part}`; found {keys}); "
                "fix image_key/language_key in the dataset's registry entry"
            )
        node = node[part]
    return node


def invert_gripper(g):
    """Closedness (1 = closed) -> openness (1 = open)."""
    return 1.0 - g


def clip01(g):
    return _tf().clip_by_value(g, 0.0, 1.0)


def rel2abs_gripper(rel):
    """Relative gripper commands (+1 close, -1 open, 0 keep) -> absolute openness in {0, 1}.

    The state before the first command is the opposite of that command (a
    gripper is only told to close when open), else open.
    """
    tf = _tf()
    rel = tf.reshape(tf.cast(rel, tf.float32), [-1])
    thresholded = tf.where(rel > 0.5, 1.0, tf.where(rel < -0.5, -1.0, 0.0))  # +1 close, -1 open
    nonzero = tf.cast(tf.not_equal(thresholded, 0.0), tf.float32)
    first = tf.reduce_sum(thresholded * nonzero * tf.cast(tf.cumsum(nonzero) == 1.0, tf.float32))
    start = tf.where(first < 0, 0.0, 1.0)  # closed only if the first command opens it

    def step(carry, cmd):
        return tf.where(cmd > 0, 0.0, tf.where(cmd < 0, 1.0, carry))

    return tf.scan(step, thresholded, initializer=start)[:, None]


def quat_to_euler(q):
    """[..., 4] xyzw quaternion -> [..., 3] roll, pitch, yaw."""
    tf = _tf()
    x, y, z, w = tf.unstack(q, axis=-1)
    roll = tf.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = tf.asin(tf.clip_by_value(2 * (w * y - z * x), -1.0, 1.0))
    yaw = tf.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return tf.stack([roll, pitch, yaw], axis=-1)


def _f32(x):
    tf = _tf()
    return tf.cast(x, tf.float32)


def _with_action(steps: dict, *parts) -> dict:
    tf = _tf()
    return {**steps, "action": tf.concat([_f32(p) for p in parts], axis=-1)}


# ---------------------------------------------------------------- standardization functions
def rt1_like(steps):  # fractal20220817_data, berkeley_autolab_ur5: relative gripper commands
    a = steps["action"]
    return _with_action(steps, a["world_vector"], a["rotation_delta"], rel2abs_gripper(a["gripper_closedness_action"]))


def closedness_dict(steps):  # kuka, roboturk, viola: absolute closedness in the action dict
    a = steps["action"]
    g = invert_gripper(clip01(_f32(a["gripper_closedness_action"])))
    return _with_action(steps, a["world_vector"], a["rotation_delta"], g)


def open_gripper_dict(steps):  # bridge (OXE release), toto: boolean `open_gripper`
    a = steps["action"]
    g = _f32(a["open_gripper"])
    return _with_action(steps, a["world_vector"], a["rotation_delta"], _tf().reshape(g, [-1, 1]))


def vector_open(steps):  # 7-D vector whose last dim is already openness (bridge_dataset, fmb, dobbe)
    a = _f32(steps["action"])
    return _with_action(steps, a[:, :6], clip01(a[:, 6:7]))


def vector_closed(steps):  # 7-D vector whose last dim is closedness in [-1, 1] or [0, 1]
    a = _f32(steps["action"])
    return _with_action(steps, a[:, :6], invert_gripper(clip01(a[:, -1:])))


def taco_play(steps):
    a = _f32(steps["action"]["rel_actions_world"])
    return _with_action(steps, a[:, :6], clip01(a[:, -1:]))


def jaco_play(steps):
    a = steps["action"]
    wv = _f32(a["world_vector"])
    return _with_action(steps, wv, _tf().zeros_like(wv), rel2abs_gripper(a["gripper_closedness_action"]))


def cable_routing(steps):
    a = steps["action"]
    wv = _f32(a["world_vector"])
    return _with_action(steps, wv, a["rotation_delta"], _tf().ones_like(wv[:, :1]))  # gripper stays closed on cable


def language_table(steps):
    tf = _tf()
    a = _f32(steps["action"])  # planar [dx, dy]
    codes = steps["observation"]["instruction"]  # int32 UTF-8 code points, zero-padded
    ragged = tf.RaggedTensor.from_tensor(tf.cast(codes, tf.int32), padding=0)  # pyright: ignore[reportAttributeAccessIssue]
    text = tf.strings.unicode_encode(ragged, "UTF-8")
    out = _with_action(steps, a, tf.zeros_like(a[:, :1]), tf.zeros_like(a[:, :3]), tf.ones_like(a[:, :1]))
    return {**out, "language_instruction": text}


def nyu_franka(steps):
    a = _f32(steps["action"])
    return _with_action(steps, a[:, -8:-2], clip01(a[:, -2:-1]))


def pos_quat_gripper(steps):  # furniture_bench, iamlab_cmu_pickup_insert: [pos3, quat4, closedness]
    a = _f32(steps["action"])
    return _with_action(steps, a[:, :3], quat_to_euler(a[:, 3:7]), invert_gripper(clip01(a[:, -1:])))


def ucsd_kitchen(steps):
    a = _f32(steps["action"])
    return _with_action(steps, a[:, :6], clip01(a[:, -2:-1]))


def bc_z(steps):
    a = steps["action"]
    close = _tf().round(_f32(a["future/target_close"])[:, :1])
    return _with_action(
        steps, a["future/xyz_residual"][:, :3], a["future/axis_angle_residual"][:, :3], invert_gripper(close)
    )


def fanuc(steps):
    a = _f32(steps["action"])
    g = invert_gripper(clip01(_f32(steps["observation"]["state"])[:, 6:7]))
    return _with_action(steps, a[:, :6], g)


def cmu_stretch(steps):
    a = _f32(steps["action"])
    return _with_action(steps, a[:, :3], _tf().zeros_like(a[:, :3]), clip01(a[:, -1:]))


def metaworld_eef7(steps):
    """Meta-World [dx, dy, dz, gripper effort (-1 open, +1 close)] padded to eef7 with openness (1 = open).

    A stop-gap until action spaces are declared: the three rotation dims are
    zero; vla_jax/evaluate/metaworld.py `to_metaworld_action` inverts it.
    """
    a = _f32(steps["action"])
    tf = _tf()
    return _with_action(steps, a[:, :3], tf.zeros_like(a[:, :3]), (1.0 - tf.clip_by_value(a[:, 3:4], -1.0, 1.0)) / 2)


def nav_actions(steps):  # our converted mobile episodes: already [linear_x, linear_y(, angular_z)]
    return {**steps, "action": _f32(steps["action"])}


# ---------------------------------------------------------------- registry
REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec, overwrite: bool = False) -> DatasetSpec:
    if spec.action_encoding not in ENCODINGS:
        raise DataError(
            f"dataset {spec.name}: action_encoding {spec.action_encoding!r}; choose one of {list(ENCODINGS)}"
        )
    if spec.name in REGISTRY and not overwrite:
        raise DataError(f"dataset {spec.name} is already registered; pass overwrite=True to replace it")
    REGISTRY[spec.name] = spec
    return spec


_LANG = "observation/natural_language_instruction"
_EXT = "_converted_externally_to_rlds"
for _name, _image, _lang, _fn in [
    ("fractal20220817_data", "image", _LANG, rt1_like),
    ("kuka", "image", _LANG, closedness_dict),
    ("bridge", "image", _LANG, open_gripper_dict),
    ("bridge_dataset", "image_0", "language_instruction", vector_open),
    ("taco_play", "rgb_static", _LANG, taco_play),
    ("jaco_play", "image", _LANG, jaco_play),
    ("berkeley_cable_routing", "image", _LANG, cable_routing),
    ("roboturk", "front_rgb", _LANG, closedness_dict),
    ("viola", "agentview_rgb", _LANG, closedness_dict),
    ("berkeley_autolab_ur5", "image", _LANG, rt1_like),
    ("toto", "image", _LANG, open_gripper_dict),
    ("language_table", "rgb", None, language_table),
    ("stanford_hydra_dataset" + _EXT, "image", "language_instruction", vector_closed),
    ("austin_buds_dataset" + _EXT, "image", "language_instruction", vector_closed),
    ("nyu_franka_play_dataset" + _EXT, "image", "language_instruction", nyu_franka),
    ("furniture_bench_dataset" + _EXT, "image", "language_instruction", pos_quat_gripper),
    ("ucsd_kitchen_dataset" + _EXT, "image", "language_instruction", ucsd_kitchen),
    ("austin_sailor_dataset" + _EXT, "image", "language_instruction", vector_closed),
    ("austin_sirius_dataset" + _EXT, "image", "language_instruction", vector_closed),
    ("bc_z", "image", _LANG, bc_z),
    ("dlr_edan_shared_control" + _EXT, "image", "language_instruction", vector_closed),
    ("iamlab_cmu_pickup_insert" + _EXT, "image", "language_instruction", pos_quat_gripper),
    ("utaustin_mutex", "image", "language_instruction", vector_closed),
    ("berkeley_fanuc_manipulation", "image", "language_instruction", fanuc),
    ("cmu_stretch", "image", "language_instruction", cmu_stretch),
    ("fmb_dataset", "image_side_1", "language_instruction", vector_open),
    ("dobbe", "wrist_image", "language_instruction", vector_open),
]:
    register(
        DatasetSpec(
            _name,
            _image,
            _lang if _name != "language_table" else "language_instruction",
            _fn,
            fixed_instruction="manipulate the object" if _name == "toto" else None,
        )
    )

for _dims in (2, 3):
    register(
        DatasetSpec(
            f"mobile_episodes{'' if _dims == 2 else '_3d'}",
            "image",
            "language_instruction",
            nav_actions,
            action_encoding=f"nav{_dims}",
            train_split="train",
            val_split="val",
            builder_name="mobile_episodes",
        )
    )

# `vla-jax sim-collect --env metaworld`: closed-loop evaluated (sim-eval), so no held-out split.
register(
    DatasetSpec("metaworld", "image", "language_instruction", metaworld_eef7, train_split="train", val_split="train")
)

# Weights of the widely used "OXE magic soup" (Octo / RoboVLMs pre-training).
MIXTURES: dict[str, list[tuple[str, float]]] = {
    "oxe_magic_soup": [
        ("fractal20220817_data", 0.54087122203),
        ("kuka", 0.8341046294),
        ("bridge_dataset", 1.0),
        ("taco_play", 2.0),
        ("jaco_play", 1.0),
        ("berkeley_cable_routing", 1.0),
        ("roboturk", 2.0),
        ("viola", 2.0),
        ("berkeley_autolab_ur5", 2.0),
        ("toto", 1.0),
        ("language_table", 0.1),
        ("stanford_hydra_dataset" + _EXT, 2.0),
        ("austin_buds_dataset" + _EXT, 1.0),
        ("nyu_franka_play_dataset" + _EXT, 3.0),
        ("furniture_bench_dataset" + _EXT, 0.1),
        ("ucsd_kitchen_dataset" + _EXT, 2.0),
        ("austin_sailor_dataset" + _EXT, 1.0),
        ("austin_sirius_dataset" + _EXT, 1.0),
        ("bc_z", 0.2),
        ("dlr_edan_shared_control" + _EXT, 1.0),
        ("iamlab_cmu_pickup_insert" + _EXT, 1.0),
        ("utaustin_mutex", 1.0),
        ("berkeley_fanuc_manipulation", 2.0),
        ("cmu_stretch", 1.0),
        ("fmb_dataset", 1.0),
        ("dobbe", 0.2),
    ],
    "bridge": [("bridge_dataset", 1.0)],
    "rt_1": [("fractal20220817_data", 1.0)],
    "mobile": [("mobile_episodes", 1.0)],
    "mobile_3d": [("mobile_episodes_3d", 1.0)],
}


def register_mixture(name: str, entries: Sequence[tuple[str, float]], overwrite: bool = False) -> None:
    if name in MIXTURES and not overwrite:
        raise DataError(f"mixture {name} already exists; pass overwrite=True to replace it")
    for ds, w in entries:
        get_spec(ds)
        if w <= 0:
            raise DataError(f"mixture {name}: weight of {ds} is {w}; weights must be > 0")
    MIXTURES[name] = list(entries)


def get_spec(name: str) -> DatasetSpec:
    if name not in REGISTRY:
        raise DataError(
            f"dataset {name!r} is not in the OXE registry; register it with "
            "data_pipelines.oxe_registry.register(DatasetSpec(...)) (see the module docstring)"
        )
    return REGISTRY[name]


def get_mixture(name_or_entries) -> list[tuple[str, float]]:
    """A mixture name, a single registered dataset name, or an explicit [(name, weight)] list."""
    if isinstance(name_or_entries, str):
        if name_or_entries in MIXTURES:
            return list(MIXTURES[name_or_entries])
        if name_or_entries in REGISTRY:
            return [(name_or_entries, 1.0)]
        raise DataError(
            f"mixture {name_or_entries!r} is unknown; choose one of {sorted(MIXTURES)} or a "
            "registered dataset name, or register it with oxe_registry.register_mixture"
        )
    entries = [(str(n), float(w)) for n, w in name_or_entries]
    for n, _ in entries:
        get_spec(n)
    return entries


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
