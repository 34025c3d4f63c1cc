"""The cross-embodiment pre-training set as a user's dataset registry (`--registry configs/xemb_registry.py`).

Registered the way a user registers their own OXE-style data (data_pipelines/registry.py), so the
set goes through the same RLDS reader, statistics, mixture sampling and padding as OXE
pre-training. The datasets (docs/cross_embodiment.md; configs/study_data.py `xemb_commands` builds them):

    xemb_low_wide     sim-collect --embodiment low_wide    -> convert-episodes --action-dim 2 --mirror
    xemb_mast_narrow  sim-collect --embodiment mast_narrow -> convert-episodes --action-dim 2 --mirror
    xemb_diff_drive   sim-collect --embodiment diff_drive  -> convert-episodes --action-dim 3 --mirror
    metaworld         sim-collect --env metaworld          (built-in entry: [dx, dy, dz, gripper], 4-D)

Action spaces and how the mixture pads them (data_pipelines/mixtures.py pads every dataset's
standardized action with zeros to the model's action_dim, and `action_dim_mask` drops the padded
dims from the loss):

    dim                  0          1                    2     3
    xemb_low_wide        linear_x   linear_y             -     -
    xemb_mast_narrow     linear_x   linear_y             -     -
    xemb_diff_drive      linear_x   angular_z            -     -
    metaworld            dx         dy                   dz    gripper (canonical [0 closed, 1 open])
    target (post-train)  linear_x   linear_y

The differential base stores the users' three columns [linear_x, 0, angular_z]; its declared action
space is the two dims it can command. Keeping its always-zero linear_y would normalise to -1 (bounds
normalisation of a constant dim; policy_io), a false target. Dim 1 is therefore "lateral intent" in the
mixture: sideways velocity for the holonomic robots, yaw rate for the differential one (positive = to
the robot's left for both), the positional alignment OXE pre-training also uses. Meta-World's gripper
is dim 3, the last of the mixture's 4, so padding never moves it; the pre-training model has no gripper
head (has_gripper=False) and regresses it like a continuous dim, since no post-training target has one.
"""

from data_pipelines.action_spaces import PRESETS
from data_pipelines.registry import DatasetSpec, register, register_mixture, vector_standardization
from data_pipelines.schema import Leaf

NAV = {"xemb_low_wide": "low_wide", "xemb_mast_narrow": "mast_narrow", "xemb_diff_drive": "diff_drive"}


def linear_x_and_yaw_rate(steps):
    """[linear_x, linear_y, angular_z] of a differential base -> [linear_x, angular_z] (it cannot strafe)."""
    import tensorflow as tf

    a = tf.cast(steps["action"], tf.float32)
    return {**steps, "action": tf.stack([a[:, 0], a[:, 2]], axis=-1)}


for _name in NAV:
    register(
        DatasetSpec(
            _name,
            "image",
            "language_instruction",
            linear_x_and_yaw_rate if _name == "xemb_diff_drive" else vector_standardization("action", 0, 2, None, None),
            action_space=PRESETS["nav2"],
            train_split="train",
            expects={"action": Leaf.parse("float32[3]" if _name == "xemb_diff_drive" else "float32[2]")},
            schema_source="vla-jax convert-episodes (configs/xemb_registry.py)",
        )
    )

# Every sample of pre-training: a quarter per robot (the three navigation robots and Meta-World's arm).
register_mixture("xemb_pretrain", [(name, 1.0) for name in NAV] + [("metaworld", 1.0)])
# Co-training: the target robot's episodes (`mobile_episodes`) are half of every batch, whatever their number N.
register_mixture("xemb_cotrain", [("mobile_episodes", 4.0)] + [(name, 1.0) for name in NAV] + [("metaworld", 1.0)])
