"""Open X-Embodiment registry: per-dataset keys, action standardization and proprio, and named mixtures.

Every standardization returns `action` float32 [n, 7] = [dx, dy, dz, droll, dpitch, dyaw,
gripper] with the gripper ABSOLUTE openness in [0 closed, 1 open] (the `eef7` preset; the
convention Octo and OpenVLA standardize OXE to), and `proprio` float32 [n, P] (the dataset's
robot state, for statistics). Frame, units and the raw gripper convention of each dataset,
with the source of each and where we depart from the publisher, Octo or OpenVLA, are in
docs/oxe_datasets.md; the published feature structures are in `oxe_schemas.py`.

A standardization gets the episode's steps as a dict of tensors with a leading time axis
(the RLDS `steps` batched) and returns the same dict with `action` (and `proprio`)
replaced; a standardization that drops steps (Bridge's relabelling) drops them from every
key. What it reads is declared per entry (`reads`) and checked against the dataset on disk
before any TensorFlow op (`schema.check`).

Names: see `data_pipelines.registry` (one namespace for datasets and mixtures, aliases,
registering your own dataset from a file).
"""

from __future__ import annotations

from data_pipelines import action_spaces, oxe_schemas
from data_pipelines.registry import (  # noqa: F401  (re-exported: the registry API, one definition)
    MIXTURES,
    REGISTRY,
    DatasetSpec,
    balance_weights,
    get_mixture,
    get_path,
    get_spec,
    load_user_registry,
    register,
    register_mixture,
)


# ---------------------------------------------------------------- tf helpers
def _tf():
    import tensorflow as tf

    return tf


def _f32(x):
    tf = _tf()
    return tf.cast(x, tf.float32)


def _col(x):
    """A per-step scalar [n] as a column [n, 1] (viola's and UR5's grippers are published as scalars)."""
    tf = _tf()
    return tf.reshape(_f32(x), [-1, 1])


def invert_gripper(g):
    """Closedness (1 = closed) -> openness (1 = open)."""
    return 1.0 - g


def clip01(g):
    return _tf().clip_by_value(g, 0.0, 1.0)


def rel2abs_gripper(rel):
    """Relative gripper commands (+1 close, -1 open, 0 keep) -> absolute openness in {0, 1}, [n, 1].

    The state before the first command is the opposite of that command (a
    gripper is only told to close when open), else open.
    """
    tf = _tf()
    rel = tf.reshape(_f32(rel), [-1])
    thresholded = tf.where(rel > 0.5, 1.0, tf.where(rel < -0.5, -1.0, 0.0))  # +1 close, -1 open
    nonzero = tf.cast(tf.not_equal(thresholded, 0.0), tf.float32)
    first = tf.reduce_sum(thresholded * nonzero * tf.cast(tf.cumsum(nonzero) == 1.0, tf.float32))
    start = tf.where(first < 0, 0.0, 1.0)  # closed only if the first command opens it

    def step(carry, cmd):
        return tf.where(cmd > 0, 0.0, tf.where(cmd < 0, 1.0, carry))

    return tf.scan(step, thresholded, initializer=start)[:, None]


def binarize_gripper(g):
    """Continuous openness [n] -> {0, 1}, [n, 1]: values in (0.05, 0.95) take the state reached after them.

    BridgeData's gripper passes through intermediate values while opening or closing; a
    trailing run of intermediate values keeps the last value (nothing comes after it).
    """
    tf = _tf()
    g = tf.reshape(_f32(g), [-1])
    decided = tf.logical_or(g > 0.95, g < 0.05)
    target = tf.cast(g > 0.95, tf.float32)

    def step(carry, x):
        is_decided, value = x
        return tf.where(is_decided, value, carry)

    last = tf.concat([[1.0], g], 0)[-1]  # g[-1], or 1 (open) for an empty episode
    return tf.scan(step, (decided, target), initializer=last, reverse=True)[:, None]


def quat_to_euler(q):
    """[..., 4] xyzw quaternion -> [..., 3] roll, pitch, yaw (extrinsic xyz, as tensorflow_graphics)."""
    tf = _tf()
    x, y, z, w = tf.unstack(q, axis=-1)
    roll = tf.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = tf.asin(tf.clip_by_value(2 * (w * y - z * x), -1.0, 1.0))
    yaw = tf.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return tf.stack([roll, pitch, yaw], axis=-1)


def _out(steps: dict, action_parts, proprio_parts=None) -> dict:
    tf = _tf()
    out = {**steps, "action": tf.concat([_f32(p) for p in action_parts], axis=-1)}
    if proprio_parts is not None:
        out["proprio"] = tf.concat([_f32(p) for p in proprio_parts], axis=-1)
    return out


def _trim(steps: dict, start: int, stop: int | None) -> dict:
    """Every per-step tensor sliced to [start:stop] (standardizations that drop steps drop them everywhere)."""
    return _tf().nest.map_structure(lambda x: x[start:stop], steps)


def _relabel_from_state(steps: dict, gripper, drop_first: bool) -> dict:
    """Bridge: motion = reached state[t+1] - state[t] (first 6 dims), the last step (no successor) dropped."""
    state = _f32(steps["observation"]["state"])
    movement = state[1:, :6] - state[:-1, :6]
    kept = _trim(steps, 0, -1)
    out = _out(kept, [movement, gripper[:-1]], [state[:-1]])
    return _trim(out, 1, None) if drop_first else out


# ---------------------------------------------------------------- standardization functions
def rt1(steps):  # fractal20220817_data: RT-1 relative gripper commands
    a, o = steps["action"], steps["observation"]
    return _out(
        steps,
        [a["world_vector"], a["rotation_delta"], rel2abs_gripper(a["gripper_closedness_action"])],
        [o["base_pose_tool_reached"], o["gripper_closed"]],
    )


def kuka(steps):  # QT-Opt: relative gripper commands like RT-1 (Octo, OpenVLA)
    a = steps["action"]
    return _out(steps, [a["world_vector"], a["rotation_delta"], rel2abs_gripper(a["gripper_closedness_action"])])


def bridge_oxe(steps):  # the OXE copy of Bridge: OpenVLA's bridge_oxe (drop the all-zero first step, relabel)
    return _relabel_from_state(steps, _col(steps["action"]["open_gripper"]), drop_first=True)


def bridge_v2(steps):  # BridgeData V2 release: Octo's bridge_dataset transform (binarize, relabel)
    return _relabel_from_state(steps, binarize_gripper(_f32(steps["action"])[:, 6]), drop_first=False)


def taco_play(steps):  # CALVIN-style: rel_actions_world, gripper +1 open / -1 close -> clip
    a, o = _f32(steps["action"]["rel_actions_world"]), _f32(steps["observation"]["robot_obs"])
    return _out(steps, [a[:, :6], clip01(a[:, 6:7])], [o[:, :7]])


def jaco_play(steps):  # translation only; relative gripper commands
    a, o = steps["action"], steps["observation"]
    wv = _f32(a["world_vector"])
    return _out(
        steps,
        [wv, _tf().zeros_like(wv), rel2abs_gripper(a["gripper_closedness_action"])],
        [o["end_effector_cartesian_pos"]],
    )


def cable_routing(steps):  # no gripper action: the gripper holds the cable, i.e. stays closed (0)
    a = steps["action"]
    wv = _f32(a["world_vector"])
    return _out(steps, [wv, a["rotation_delta"], _tf().zeros_like(wv[:, :1])], [steps["observation"]["robot_state"]])


def roboturk(steps):  # absolute closedness in [-1, 1] -> clip, invert
    a = steps["action"]
    return _out(
        steps, [a["world_vector"], a["rotation_delta"], invert_gripper(clip01(_f32(a["gripper_closedness_action"])))]
    )


def viola(steps):  # as roboturk, but the published gripper is a scalar per step
    a, o = steps["action"], steps["observation"]
    return _out(
        steps,
        [a["world_vector"], a["rotation_delta"], invert_gripper(clip01(_col(a["gripper_closedness_action"])))],
        [o["joint_states"], o["gripper_states"]],
    )


def autolab_ur5(steps):  # scalar relative gripper: 1 close, -1 open, 0 no change
    a = steps["action"]
    return _out(
        steps,
        [a["world_vector"], a["rotation_delta"], rel2abs_gripper(a["gripper_closedness_action"])],
        [steps["observation"]["robot_state"]],
    )


def toto(steps):  # scalar boolean `open_gripper`
    a = steps["action"]
    return _out(
        steps, [a["world_vector"], a["rotation_delta"], _col(a["open_gripper"])], [steps["observation"]["state"]]
    )


def language_table(steps):  # planar [dx, dy] pushing; gripper open; instruction as zero-padded UTF-8 bytes
    tf = _tf()
    a = _f32(steps["action"])
    o = steps["observation"]
    byte_table = tf.constant([bytes([i]) for i in range(256)])
    codes = tf.RaggedTensor.from_tensor(tf.cast(o["instruction"], tf.int32), padding=0)  # pyright: ignore[reportAttributeAccessIssue]
    text = tf.strings.reduce_join(tf.gather(byte_table, tf.clip_by_value(codes, 0, 255)), axis=-1)
    out = _out(
        steps,
        [a, tf.zeros_like(a), tf.zeros_like(a), tf.ones_like(a[:, :1])],  # dz + rotation: 0
        [o["effector_translation"]],
    )
    return {**out, "language_instruction": text}


def vector_closed(steps):  # 7-D [6x EEF delta, 1x gripper closedness in [-1, 1] or [0, 1]] -> clip, invert
    a = _f32(steps["action"])
    return _out(steps, [a[:, :6], invert_gripper(clip01(a[:, 6:7]))], [steps["observation"]["state"]])


def vector_open(steps):  # 7-D [6x EEF, 1x gripper openness] -> clip
    a = _f32(steps["action"])
    return _out(steps, [a[:, :6], clip01(a[:, 6:7])], [steps["observation"]["state"]])


def nyu_franka(steps):  # 15-D [7 joint vel, 3 EE dxyz, 3 EE drpy, 1 gripper, 1 terminate]
    a = _f32(steps["action"])
    return _out(steps, [a[:, 7:13], clip01(a[:, 13:14])], [steps["observation"]["state"]])


def furniture_bench(steps):  # 8-D [pos3, quat4 (xyzw), gripper -1 open / +1 close] -> euler, clip, invert
    a = _f32(steps["action"])
    return _out(
        steps, [a[:, :3], quat_to_euler(a[:, 3:7]), invert_gripper(clip01(a[:, 7:8]))], [steps["observation"]["state"]]
    )


def iamlab_pickup_insert(steps):  # 8-D [pos3, quat4, gripper open/close with 1 = open] (Octo, OpenVLA: no inversion)
    a = _f32(steps["action"])
    return _out(steps, [a[:, :3], quat_to_euler(a[:, 3:7]), clip01(a[:, 7:8])], [steps["observation"]["state"]])


def ucsd_kitchen(steps):  # 8-D [EEF pos3, orientation3, gripper open/close, terminate]
    a = _f32(steps["action"])
    return _out(steps, [a[:, :6], clip01(a[:, 6:7])], [steps["observation"]["state"]])


def bc_z(steps):  # the first of 10 future steps; target_close 1 = closed
    a, o = steps["action"], steps["observation"]
    close = _tf().round(_f32(a["future/target_close"])[:, :1])
    return _out(
        steps,
        [a["future/xyz_residual"][:, :3], a["future/axis_angle_residual"][:, :3], invert_gripper(close)],
        [o["present/xyz"], o["present/axis_angle"], o["present/sensed_close"]],
    )


def fanuc(steps):  # 6-D motion; no gripper action: the gripper state (1 = closed, as Octo reads it) is used
    a, state = _f32(steps["action"]), _f32(steps["observation"]["state"])
    return _out(steps, [a, invert_gripper(clip01(state[:, 6:7]))], [state])


def cmu_stretch(steps):  # 8-D [3 ee pos, 3 ee rot, 1 gripper binary, 1 terminate]
    a = _f32(steps["action"])
    return _out(steps, [a[:, :6], clip01(a[:, 6:7])], [steps["observation"]["state"]])


def fmb(steps):  # 7-D as published; proprio = eef pose + scalar gripper pose
    a, o = _f32(steps["action"]), steps["observation"]
    return _out(steps, [a[:, :6], clip01(a[:, 6:7])], [o["eef_pose"], _col(o["state_gripper_pose"])])


def droid(steps):  # base-frame Cartesian velocity + gripper position (1 = closed) -> openness
    a, o = steps["action_dict"], steps["observation"]
    return _out(
        steps,
        [a["cartesian_velocity"], invert_gripper(clip01(_f32(a["gripper_position"])))],
        [o["cartesian_position"], o["gripper_position"]],
    )


def actions_as_stored(steps):
    """Datasets already written in their declared layout: our mobile episodes ([linear_x, linear_y(, angular_z)])
    and Meta-World ([dx, dy, dz, gripper] with its own gripper convention, mapped by the pipeline)."""
    return {**steps, "action": _f32(steps["action"])}


# ---------------------------------------------------------------- registrations
_RT = "observation/natural_language_instruction"  # RT-X conversions keep the instruction in the observation
_EXT = "_converted_externally_to_rlds"
_VEC = ("action", "observation/state")
_DICT = ("action/world_vector", "action/rotation_delta")


def _oxe(
    name,
    image,
    language,
    fn,
    reads,
    proprio_dim=None,
    *,
    published=None,
    val="train[95%:]",
    train="train[:95%]",
    language_made=False,
    **extra,
):
    """Register one OXE dataset; `language_made`: the standardization makes `language` (it is not read)."""
    published = published or name
    paths = [*reads, f"observation/{image}"] + ([language] if language and not language_made else [])
    register(
        DatasetSpec(
            name,
            image,
            language,
            fn,
            train_split=train,
            val_split=val,
            proprio_dim=proprio_dim,
            expects=oxe_schemas.expects(published, paths),
            schema_source=oxe_schemas.SOURCES[published],
            **extra,
        )
    )


_GRIP = "action/gripper_closedness_action"
_oxe(
    "fractal20220817_data",
    "image",
    _RT,
    rt1,
    (*_DICT, _GRIP, "observation/base_pose_tool_reached", "observation/gripper_closed"),
    8,
    aliases=("rt_1",),
)
_oxe("kuka", "image", _RT, kuka, (*_DICT, _GRIP))
_oxe("bridge", "image", _RT, bridge_oxe, ("action/open_gripper", "observation/state"), 7, train="train", val="test")
_oxe(
    "bridge_dataset",
    "image_0",
    "language_instruction",
    bridge_v2,
    _VEC,
    7,
    aliases=("bridge_orig", "bridge_v2"),
    train="train",
    val="val",
)
_oxe(
    "taco_play",
    "rgb_static",
    _RT,
    taco_play,
    ("action/rel_actions_world", "observation/robot_obs"),
    7,
    train="train",
    val="test",
    wrist_image_key="rgb_gripper",
)
_oxe(
    "jaco_play",
    "image",
    _RT,
    jaco_play,
    ("action/world_vector", _GRIP, "observation/end_effector_cartesian_pos"),
    7,
    train="train",
    val="test",
    wrist_image_key="image_wrist",
)
_oxe(
    "berkeley_cable_routing",
    "image",
    _RT,
    cable_routing,
    (*_DICT, "observation/robot_state"),
    7,
    train="train",
    val="test",
    wrist_image_key="wrist45_image",
)
_oxe("roboturk", "front_rgb", _RT, roboturk, (*_DICT, _GRIP))
_oxe(
    "viola",
    "agentview_rgb",
    _RT,
    viola,
    (*_DICT, _GRIP, "observation/joint_states", "observation/gripper_states"),
    8,
    train="train",
    val="test",
    wrist_image_key="eye_in_hand_rgb",
)
_oxe(
    "berkeley_autolab_ur5",
    "image",
    _RT,
    autolab_ur5,
    (*_DICT, _GRIP, "observation/robot_state"),
    15,
    wrist_image_key="hand_image",
)
_oxe(
    "toto",
    "image",
    _RT,
    toto,
    (*_DICT, "action/open_gripper", "observation/state"),
    7,
    fixed_instruction="manipulate the object",
)
_oxe(
    "language_table",
    "rgb",
    "language_instruction",
    language_table,
    ("action", "observation/instruction", "observation/effector_translation"),
    2,
    language_made=True,
)
for _name, _fn, _dim, _wrist in [
    ("stanford_hydra_dataset", vector_closed, 27, "wrist_image"),
    ("austin_buds_dataset", vector_closed, 24, "wrist_image"),
    ("ucsd_kitchen_dataset", ucsd_kitchen, 21, None),
    ("austin_sailor_dataset", vector_closed, 8, "wrist_image"),
    ("austin_sirius_dataset", vector_closed, 8, "wrist_image"),
    ("dlr_edan_shared_control", vector_closed, 7, None),
]:
    _oxe(_name + _EXT, "image", "language_instruction", _fn, _VEC, _dim, wrist_image_key=_wrist)
_oxe("nyu_franka_play_dataset" + _EXT, "image", "language_instruction", nyu_franka, _VEC, 13, train="train", val="val")
_oxe(
    "furniture_bench_dataset" + _EXT,
    "image",
    "language_instruction",
    furniture_bench,
    _VEC,
    35,
    wrist_image_key="wrist_image",
)
_oxe(
    "iamlab_cmu_pickup_insert" + _EXT,
    "image",
    "language_instruction",
    iamlab_pickup_insert,
    _VEC,
    20,
    wrist_image_key="wrist_image",
)
_oxe(
    "bc_z",
    "image",
    _RT,
    bc_z,
    (
        "action/[future/xyz_residual]",
        "action/[future/axis_angle_residual]",
        "action/[future/target_close]",
        "observation/[present/xyz]",
        "observation/[present/axis_angle]",
        "observation/[present/sensed_close]",
    ),
    7,
    train="train",
    val="val",
)
_oxe("utaustin_mutex", "image", "language_instruction", vector_closed, _VEC, 24, wrist_image_key="wrist_image")
_oxe("berkeley_fanuc_manipulation", "image", "language_instruction", fanuc, _VEC, 13, wrist_image_key="wrist_image")
_oxe("cmu_stretch", "image", "language_instruction", cmu_stretch, _VEC, 4)
_oxe(
    "fmb",
    "image_side_1",
    "language_instruction",
    fmb,
    ("action", "observation/eef_pose", "observation/state_gripper_pose"),
    8,
    aliases=("fmb_dataset",),
    wrist_image_key="image_wrist_1",
)
_oxe("dobbe", "wrist_image", "language_instruction", vector_open, _VEC, 7)
_oxe(
    "droid",
    "exterior_image_1_left",
    "language_instruction",
    droid,
    (
        "action_dict/cartesian_velocity",
        "action_dict/gripper_position",
        "observation/cartesian_position",
        "observation/gripper_position",
    ),
    7,
    wrist_image_key="wrist_image_left",
)

for _dims in (2, 3):
    register(
        DatasetSpec(
            f"mobile_episodes{'' if _dims == 2 else '_3d'}",
            "image",
            "language_instruction",
            actions_as_stored,
            action_space=action_spaces.PRESETS[f"nav{_dims}"],
            train_split="train",
            val_split="val",
            builder_name="mobile_episodes",
            aliases=("mobile",) if _dims == 2 else ("mobile_3d",),
        )
    )

# `vla-jax sim-collect --env metaworld` (and LeRobot's Meta-World set converted): [dx, dy, dz, gripper effort] in
# [-1, 1], effort -1 opens and +1 closes. Closed-loop evaluated (sim-eval), so every episode trains: no val split.
register(
    DatasetSpec(
        "metaworld",
        "image",
        "language_instruction",
        actions_as_stored,
        action_space=action_spaces.ActionSpace(
            continuous=3, gripper=action_spaces.parse_gripper("[-1 open, +1 close]")
        ),
        train_split="train",
        val_split=None,
    )
)

# Weights of the "OXE magic soup" (Octo's OXE_MAGIC_SOUP, also RoboVLMs' pre-training mix; with BridgeData V2).
register_mixture(
    "oxe_magic_soup",
    [
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
        ("fmb", 1.0),
        ("dobbe", 0.2),
    ],
)
# OpenVLA's "oxe_magic_soup_plus" adds bc_z, fmb, dobbe (already in Octo's soup above, same weights) and DROID at 0.06.
register_mixture("oxe_magic_soup_plus", [*MIXTURES["oxe_magic_soup"], ("droid", 0.06)])
