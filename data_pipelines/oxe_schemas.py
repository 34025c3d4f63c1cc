"""Published feature structures of the OXE datasets in the registry, transcribed offline.

Each entry is the dataset's feature structure as its publisher prints it - the TFDS catalog
page `https://www.tensorflow.org/datasets/catalog/<name>` (generated from the dataset's
`features.json` in the OXE bucket by `tensorflow_datasets/robotics/rtx`), or the project's
own release where it is not in the catalog - as {path inside an episode: Leaf}. Steps
live under `steps/`; episode-level fields (`episode_metadata/...`, `episode_id`) next to it.

Uses: `oxe_registry` derives what each standardization expects from here (checked when a
dataset is opened, see `schema.check`), and `testing.write_published_rlds` fills these
structures with tiny random episodes so every registered dataset is tested on its
published schema, offline.

Image encoding: the catalog does not print it. Where the publisher's features.json states
it (language_table, BridgeData V2's builder, DROID) it is given; elsewhere it is None
(features.json has no `encodingFormat`, i.e. tfds's default, PNG) and the fixtures write
PNG, so both decoders are exercised. Image sizes are the published ones; fixtures shrink
them (the reader never depends on them).
"""

from __future__ import annotations

from data_pipelines.schema import Leaf

CATALOG = "https://www.tensorflow.org/datasets/catalog/"


def f32(*shape, values=None) -> Leaf:
    return Leaf("float32", shape, values=values)


def f64(*shape) -> Leaf:
    return Leaf("float64", shape)


def i32(*shape, values=None) -> Leaf:
    return Leaf("int32", shape, values=values)


def i64(*shape, values=None) -> Leaf:
    return Leaf("int64", shape, values=values)


def img(h, w, c=3, enc=None, dtype="uint8") -> Leaf:
    return Leaf(dtype, (h, w, c), image=True, encoding=enc)


B, S, U8 = Leaf("bool"), Leaf("string"), Leaf("uint8")
REL_GRIPPER = (-1.0, 0.0, 1.0)  # +1 close, -1 open, 0 no change (RT-1 style relative command)


def _steps(fields: dict, *, language: str | None = "observation", discount: bool = False) -> dict:
    """RLDS step fields + the language fields of the two OXE conventions (RT-X vs external template)."""
    out = {"is_first": B, "is_last": B, "is_terminal": B, "reward": f32(), **fields}
    if language == "observation":  # RT-X conversions: instruction + USE embedding in the observation
        out.update({"observation/natural_language_instruction": S, "observation/natural_language_embedding": f32(512)})
    elif language == "step":  # the RLDS dataset-builder template: at step level
        out.update({"language_instruction": S, "language_embedding": f32(512)})
    if discount:
        out["discount"] = f32()
    return {f"steps/{k}": v for k, v in out.items()}


_FILE_PATH = {"episode_metadata/file_path": S}


def _external(action: Leaf, observation: dict, **extra) -> dict:
    """The structure every `*_converted_externally_to_rlds` dataset shares (RLDS dataset-builder template)."""
    return {
        **_steps(
            {"action": action, **{f"observation/{k}": v for k, v in observation.items()}, **extra},
            language="step",
            discount=True,
        ),
        **_FILE_PATH,
    }


_EXT = "_converted_externally_to_rlds"
# The action dict RT-1 (fractal) and QT-Opt (kuka) share in their RT-X conversions.
_RTX_ACTION = {
    "action/base_displacement_vector": f32(2),
    "action/base_displacement_vertical_rotation": f32(1),
    "action/gripper_closedness_action": f32(1, values=REL_GRIPPER),
    "action/rotation_delta": f32(3),
    "action/terminate_episode": i32(3, values=(0, 1)),
    "action/world_vector": f32(3),
}

# bridge (OXE copy) and toto publish exactly this structure (their catalog pages are identical here).
_OPEN_GRIPPER_RTX = {
    "action/open_gripper": B,
    "action/rotation_delta": f32(3),
    "action/terminate_episode": f32(),
    "action/world_vector": f32(3),
    "observation/image": img(480, 640),
    "observation/state": f32(7),
}

PUBLISHED: dict[str, dict[str, Leaf]] = {
    "fractal20220817_data": {
        **_steps(
            {
                **_RTX_ACTION,
                "observation/base_pose_tool_reached": f32(7),
                "observation/gripper_closed": f32(1),
                "observation/gripper_closedness_commanded": f32(1),
                "observation/height_to_bottom": f32(1),
                "observation/image": img(256, 320),
                "observation/orientation_box": f32(2, 3),
                "observation/orientation_start": f32(4),
                "observation/robot_orientation_positions_box": f32(3, 3),
                "observation/rotation_delta_to_go": f32(3),
                "observation/src_rotation": f32(4),
                "observation/vector_to_go": f32(3),
                "observation/workspace_bounds": f32(3, 3),
            }
        ),
        **{f"aspects/{k}": B for k in ("already_success", "feasible", "has_aspects", "success", "undesirable")},
        **{
            f"attributes/{k}": i64()
            for k in ("collection_mode", "data_type", "env", "location", "objects_family", "task_family")
        },
        **{
            f"attributes/{k}_name": S
            for k in ("collection_mode", "data_type", "env", "location", "objects_family", "task_family")
        },
    },
    "kuka": {
        **_steps(
            {
                **_RTX_ACTION,
                "observation/[clip_function_input/base_pose_tool_reached]": f32(7),
                "observation/[clip_function_input/workspace_bounds]": f32(3, 3),
                "observation/gripper_closed": f32(1),
                "observation/height_to_bottom": f32(1),
                "observation/image": img(512, 640),
                "observation/task_id": f32(1),
            }
        ),
        "success": B,
    },
    "bridge": _steps(_OPEN_GRIPPER_RTX),  # the OXE copy of BridgeData (v1 + v2 at 480x640, RT-X action dict)
    "taco_play": _steps(
        {
            "action/actions": f32(7),
            "action/rel_actions_gripper": f32(7),
            "action/rel_actions_world": f32(7),
            "action/terminate_episode": f32(),
            "observation/depth_gripper": f32(84, 84),
            "observation/depth_static": f32(150, 200),
            "observation/rgb_gripper": img(84, 84),
            "observation/rgb_static": img(150, 200),
            "observation/robot_obs": f32(15),
            "observation/structured_language_instruction": S,
        }
    ),
    "jaco_play": _steps(
        {
            "action/gripper_closedness_action": f32(1, values=REL_GRIPPER),
            "action/terminate_episode": i32(3, values=(0, 1)),
            "action/world_vector": f32(3),
            "observation/end_effector_cartesian_pos": f32(7),
            "observation/end_effector_cartesian_velocity": f32(6),
            "observation/image": img(224, 224),
            "observation/image_wrist": img(224, 224),
            "observation/joint_pos": f32(8),
        }
    ),
    "berkeley_cable_routing": _steps(
        {
            "action/rotation_delta": f32(3),
            "action/terminate_episode": f32(),
            "action/world_vector": f32(3),
            "observation/image": img(128, 128),
            "observation/robot_state": f32(7),
            "observation/top_image": img(128, 128),
            "observation/wrist225_image": img(128, 128),
            "observation/wrist45_image": img(128, 128),
        }
    ),
    "roboturk": _steps(
        {
            "action/gripper_closedness_action": f32(1, values=(-1.0, 1.0)),
            "action/rotation_delta": f32(3),
            "action/terminate_episode": f32(),
            "action/world_vector": f32(3),
            "observation/front_rgb": img(480, 640),
        }
    ),
    "viola": _steps(
        {  # NB: the gripper action is a scalar per step here, unlike RT-1's [1]
            "action/gripper_closedness_action": f32(values=(-1.0, 1.0)),
            "action/rotation_delta": f32(3),
            "action/terminate_episode": f32(),
            "action/world_vector": f32(3),
            "observation/agentview_rgb": img(224, 224),
            "observation/ee_states": f32(16),
            "observation/eye_in_hand_rgb": img(224, 224),
            "observation/gripper_states": f32(1),
            "observation/joint_states": f32(7),
        }
    ),
    "berkeley_autolab_ur5": _steps(
        {  # scalar gripper: 1 close, -1 open, 0 no change (catalog description)
            "action/gripper_closedness_action": f32(values=REL_GRIPPER),
            "action/rotation_delta": f32(3),
            "action/terminate_episode": f32(),
            "action/world_vector": f32(3),
            "observation/hand_image": img(480, 640),
            "observation/image": img(480, 640),
            "observation/image_with_depth": img(480, 640, 1, dtype="float32"),
            "observation/robot_state": f32(15),
        }
    ),
    "toto": _steps(_OPEN_GRIPPER_RTX),
    "language_table": {  # tensorflow_datasets/robotics/language_table/.../features.json; no text instruction
        **_steps(
            {
                "action": f32(2),
                "observation/effector_target_translation": f32(2),
                "observation/effector_translation": f32(2),
                "observation/instruction": Leaf("int32", (512,), utf8=True),
                "observation/rgb": img(360, 640, enc="jpeg"),
            },
            language=None,
        ),
        "episode_id": S,
    },
    "stanford_hydra_dataset" + _EXT: _external(
        f32(7), {"image": img(240, 320), "state": f32(27), "wrist_image": img(240, 320)}, is_dense=B
    ),
    "austin_buds_dataset" + _EXT: _external(
        f32(7), {"image": img(128, 128), "state": f32(24), "wrist_image": img(128, 128)}
    ),
    "nyu_franka_play_dataset" + _EXT: _external(
        f32(15),
        {
            "depth": i32(128, 128, 1),
            "depth_additional_view": i32(128, 128, 1),
            "image": img(128, 128),
            "image_additional_view": img(128, 128),
            "state": f32(13),
        },
    ),
    # The catalog page of furniture_bench could not be read offline in this session: the structure below
    # follows the dataset's OXE spreadsheet entry as used by Octo's and OpenVLA's transforms (8-D action
    # [3x pos, 4x quat, 1x gripper], 35-D state), with the template's common fields. Verify on first real use.
    "furniture_bench_dataset" + _EXT: _external(
        f32(8), {"image": img(224, 224), "state": f32(35), "wrist_image": img(224, 224)}
    ),
    "ucsd_kitchen_dataset" + _EXT: _external(f32(8), {"image": img(480, 640), "state": f32(21)}),
    "austin_sailor_dataset" + _EXT: _external(
        f32(7),
        {
            "image": img(128, 128),
            "state": f32(8),
            "state_ee": f32(16),
            "state_gripper": f32(1),
            "state_joint": f32(7),
            "wrist_image": img(128, 128),
        },
    ),
    "austin_sirius_dataset" + _EXT: _external(
        f32(7),
        {
            "image": img(84, 84),
            "state": f32(8),
            "state_ee": f32(16),
            "state_gripper": f32(1),
            "state_joint": f32(7),
            "wrist_image": img(84, 84),
        },
        action_mode=f32(1),
        intv_label=f32(1),
    ),
    "bc_z": _steps(
        {
            "action/[future/axis_angle_residual]": f32(30),
            "action/[future/target_close]": i64(10, values=(0, 1)),
            "action/[future/xyz_residual]": f32(30),
            "observation/episode_success": f32(),
            "observation/image": img(171, 213),
            "observation/[present/autonomous]": i64(values=(0, 1)),
            "observation/[present/axis_angle]": f32(3),
            "observation/[present/intervention]": i64(values=(0, 1)),
            "observation/[present/sensed_close]": f32(1),
            "observation/[present/xyz]": f32(3),
            "observation/sequence_length": i64(),
        }
    ),
    "dlr_edan_shared_control" + _EXT: _external(f32(7), {"image": img(360, 640), "state": f32(7)}),
    "iamlab_cmu_pickup_insert" + _EXT: _external(
        f32(8), {"image": img(360, 640), "state": f32(20), "wrist_image": img(240, 320)}
    ),
    "utaustin_mutex": _external(f32(7), {"image": img(128, 128), "state": f32(24), "wrist_image": img(128, 128)}),
    "berkeley_fanuc_manipulation": _external(
        f32(6), {"end_effector_state": f32(7), "image": img(224, 224), "state": f32(13), "wrist_image": img(224, 224)}
    ),
    "cmu_stretch": _external(f32(8), {"image": img(128, 128), "state": f32(4)}),
    "fmb": {
        **_steps(
            {
                "action": f32(7),
                **{
                    f"observation/{k}": v
                    for k, v in {
                        "color_id": U8,
                        "eef_force": f32(3),
                        "eef_pose": f32(7),
                        "eef_torque": f32(3),
                        "eef_vel": f32(6),
                        "image_side_1": img(256, 256),
                        "image_side_1_depth": f32(256, 256),
                        "image_side_2": img(256, 256),
                        "image_side_2_depth": f32(256, 256),
                        "image_wrist_1": img(256, 256),
                        "image_wrist_1_depth": f32(256, 256),
                        "image_wrist_2": img(256, 256),
                        "image_wrist_2_depth": f32(256, 256),
                        "joint_pos": f32(7),
                        "joint_vel": f32(7),
                        "length": S,
                        "object_id": U8,
                        "primitive": S,
                        "shape_id": U8,
                        "size": S,
                        "state_gripper_pose": f32(),
                    }.items()
                },
            },
            language="step",
            discount=True,
        ),
        "episode_metadata/episode_language_embedding": f32(512),
        "episode_metadata/episode_language_instruction": S,
        "episode_metadata/episode_task": S,
        **_FILE_PATH,
    },
    "dobbe": _external(
        f32(7),
        {
            "gripper": f32(1),
            "quat": f32(4),
            "rot": f32(3),
            "state": f32(7),
            "wrist_image": img(256, 256),
            "xyz": f32(3),
        },
    ),
    # BridgeData V2 as released by its authors (rail.eecs.berkeley.edu/datasets/bridge_release/data/tfds/
    # bridge_dataset/1.0.0, built by their RLDS builder): the copy Octo and OpenVLA train on ("bridge_orig").
    "bridge_dataset": {
        **_steps(
            {
                "action": f32(7),
                **{f"observation/image_{i}": img(256, 256, enc="jpeg") for i in range(4)},
                "observation/state": f32(7),
            },
            language="step",
            discount=True,
        ),
        **{f"episode_metadata/has_image_{i}": B for i in range(4)},
        "episode_metadata/has_language": B,
        "episode_metadata/episode_id": i32(),
        **_FILE_PATH,
    },
    # DROID 1.0.x RLDS (https://droid-dataset.github.io, TFDS catalog `droid`; field descriptions as in
    # droid_100's features.json): float64 robot fields, three 180x320 JPEG cameras, three step-level
    # instruction slots (most episodes fill only the first).
    "droid": {
        **_steps(
            {
                "action": f64(7),  # [6x joint velocity, 1x gripper position]
                **{
                    f"action_dict/{k}": f64(n)
                    for k, n in (
                        ("cartesian_position", 6),
                        ("cartesian_velocity", 6),
                        ("gripper_position", 1),
                        ("gripper_velocity", 1),
                        ("joint_position", 7),
                        ("joint_velocity", 7),
                    )
                },
                "language_instruction_2": S,
                "language_instruction_3": S,
                "observation/cartesian_position": f64(6),
                "observation/gripper_position": f64(1),
                "observation/joint_position": f64(7),
                **{
                    f"observation/{k}": img(180, 320, enc="jpeg")
                    for k in ("exterior_image_1_left", "exterior_image_2_left", "wrist_image_left")
                },
            },
            language=None,
            discount=True,
        ),
        "steps/language_instruction": S,
        "episode_metadata/file_path": S,
        "episode_metadata/recording_folderpath": S,
    },
}

SOURCES: dict[str, str] = {name: CATALOG + name for name in PUBLISHED}
SOURCES["language_table"] = (
    "tensorflow_datasets/robotics/language_table/dummy_data/language_table/0.0.1/"
    "features.json (catalog: " + CATALOG + "language_table)"
)
SOURCES["bridge_dataset"] = "https://rail.eecs.berkeley.edu/datasets/bridge_release/data/tfds/bridge_dataset/1.0.0"
SOURCES["droid"] = "https://droid-dataset.github.io (TFDS catalog: " + CATALOG + "droid)"
SOURCES["furniture_bench_dataset" + _EXT] += " (not read in this session; see the comment in PUBLISHED)"


def expects(name: str, step_paths) -> dict[str, Leaf]:
    """The published leaves of `name` at the given step paths (what a standardization reads)."""
    table = PUBLISHED[name]
    missing = [p for p in step_paths if f"steps/{p}" not in table]
    if missing:
        raise KeyError(f"{name}: {missing} are not in its published schema")
    return {p: table[f"steps/{p}"] for p in step_paths}
