"""A JAX policy and its export give the same actions on the same raw camera frames.

Every resize mode x every normalisation mode, camera-sized and non-square frames (480x640,
720x1280, 300x200, in the camera's BGR order), a history window that starts padded: the JAX
reference policy (vla_jax.evaluate.jax_policy) and the torch runtime (vla_runtime.Policy) both
run vla_runtime.policy_io, so their model inputs are the same bytes and their actions agree to
1e-4 in robot units. The negative control shows the comparison can fail: the same export read
with a stretching preprocessing (what the exporter wrote before it carried the resize mode)
drives differently.
"""

import ml_collections
import numpy as np
import pytest

from vla_jax.evaluate.jax_policy import JaxWorkdirPolicy
from vla_jax.export.export import export_policy
from vla_jax.train.model import preprocessing, vla_config
from vla_runtime import Policy
from vla_runtime.policy_io import RESIZE_MODES, to_model_frame

INSTRUCTION = "Navigate around the obstacle on the left side and reach the target"
CAMERA = [(480, 640), (720, 1280), (300, 200), (480, 640)]
# Narrow ranges on dim 1 so that every mode's clipping rule is exercised, not only the formulas.
ACTION = {
    "mean": [0.3, -0.1],
    "std": [0.5, 0.02],
    "min": [-1.15, -0.05],
    "max": [1.15, 0.04],
    "q01": [-1.0, -0.04],
    "q99": [1.0, 0.03],
    "mask": [True, True],
}


@pytest.fixture(scope="module")
def model(tiny_policy):
    root, config, params = tiny_policy
    frames = [np.random.default_rng(i).integers(0, 256, (*hw, 3), dtype=np.uint8) for i, hw in enumerate(CAMERA)]
    return root, config, params, frames


def _export(root, config, params, resize_mode, normalization, channel_order="BGR"):
    statistics = {"mobile_episodes": {"normalization": normalization, "action": ACTION}}
    out = root / f"export_{resize_mode}_{normalization}_{channel_order}"
    export_policy(
        vla_config(config),
        params,
        statistics,
        str(root / "tok"),
        str(out),
        instruction_length=16,
        resize_mode=resize_mode,
        input_channel_order=channel_order,
    )
    return out, statistics


@pytest.mark.parametrize("resize_mode", RESIZE_MODES)
def test_jax_policy_and_export_agree_on_raw_camera_frames(model, resize_mode):
    root, config, params, frames = model
    config = ml_collections.ConfigDict(config.to_dict())
    config.data.config.resize_mode = resize_mode
    for normalization in ("bounds", "bounds_q99", "normal", "none"):
        out, statistics = _export(root, config, params, resize_mode, normalization)
        jax_policy = JaxWorkdirPolicy(config, params, statistics, input_channel_order="BGR", fast_compile=True)
        torch_policies = [Policy.load(str(out)), Policy.load(str(out), incremental=False)]
        assert torch_policies[0].preprocessing == preprocessing(config, "BGR")  # the export wrote its parameters
        for policy in (jax_policy, *torch_policies):
            policy.reset(INSTRUCTION)
        at_bounds = 0
        for frame in frames:
            ours = jax_policy.step(frame)
            for policy in torch_policies:
                np.testing.assert_allclose(
                    policy.step(frame), ours, atol=1e-4, rtol=0, err_msg=f"{resize_mode}/{normalization} {frame.shape}"
                )
                # the model inputs are the same bytes on both sides
                np.testing.assert_array_equal(policy._frames[-1].numpy(), jax_policy.history[-1])
            assert ours.dtype == np.float32 and np.all(ours[:, 1] >= -0.05) and np.all(ours[:, 1] <= 0.04)
            at_bounds += int(
                np.isclose(ours[:, 1], -0.05, atol=1e-6).sum() + np.isclose(ours[:, 1], 0.04, atol=1e-6).sum()
            )
        assert jax_policy.history[-1].shape == (32, 32, 3)
        if normalization in ("normal", "none"):  # the one clipping rule was really exercised on both sides
            assert at_bounds > 0, normalization


def test_the_comparison_fails_when_preprocessing_differs(model):
    """Negative control: an export whose preprocessing stretches while training padded drives differently."""
    root, config, params, frames = model
    config = ml_collections.ConfigDict(config.to_dict())
    config.data.config.resize_mode = "pad"
    out, statistics = _export(root, config, params, "resize", "bounds")  # the old bug: resize mode not carried
    jax_policy = JaxWorkdirPolicy(config, params, statistics, input_channel_order="BGR", fast_compile=True)
    stretched = Policy.load(str(out))
    jax_policy.reset(INSTRUCTION)
    stretched.reset(INSTRUCTION)
    diffs = [np.abs(jax_policy.step(f) - stretched.step(f)).max() for f in frames]
    assert max(diffs) > 1e-3, diffs


def test_every_mode_keeps_the_aspect_it_promises():
    from vla_runtime.policy_io import Preprocessing

    frame = np.zeros((300, 200, 3), np.uint8)
    frame[:, :, 0] = 255  # blue in BGR
    for mode in RESIZE_MODES:
        out = to_model_frame(frame, Preprocessing(image_size=(32, 32), resize_mode=mode, input_channel_order="BGR"))
        assert out.shape == (32, 32, 3) and out[..., 0].max() == 0  # BGR -> RGB
        assert out[0, 0, 2] == (0 if mode == "pad" else 255), mode  # pad: black bars left and right of a tall frame
        assert out[16, 16, 2] == 255


def test_eval_offline_scores_what_the_reference_policy_does_on_the_raw_episodes(model, tmp_path):
    """convert-episodes -> grain loader -> eval-offline and the JAX reference policy on the HDF5 frames agree:
    one resize (pad), one de-normalisation and clipping rule (normal), one history rule, end to end."""
    import types

    from data_pipelines import mobile_episodes as me
    from data_pipelines import testing as dt
    from data_pipelines.convert_episodes import convert
    from vla_jax.evaluate.offline import evaluate_offline
    from vla_jax.evaluate.offline_metrics import offline_metrics
    from vla_jax.train.checkpoint import Checkpointer, write_json
    from vla_jax.train.defaults import base_config

    root, config, params, _ = model
    src = tmp_path / "h5"
    paths = [
        dt.write_mobile_episode(
            str(src), stamp=f"2024080{i + 1}_080000", num_frames=5, height=48, width=64, seed=20 + i
        )
        for i in range(3)
    ]
    data_dir = str(tmp_path / "rlds")
    convert(str(src), data_dir, image_size=32, resize_mode="pad", val_fraction=0.34, encoding="png")
    full = base_config()
    full.model = config.model
    full.data.update(source="loader", tokenizer=config.data.tokenizer, instruction_length=16)
    full.data.config.update(kind="mobile_grain", data_dir=data_dir, resize_mode="pad", normalization="normal")
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    write_json(workdir / "config.json", full.to_dict())
    statistics = {"mobile_episodes": {"normalization": "normal", "action": ACTION}}
    write_json(workdir / "statistics.json", statistics)
    checkpointer = Checkpointer(workdir, every=1, keep=1, use_async=False)
    state = types.SimpleNamespace(step=np.int32(1), params=params, opt_state={}, rng=np.zeros((2,), np.uint32))
    checkpointer.save(1, state, {"step": 1})
    checkpointer.wait()
    checkpointer.close()

    metrics = evaluate_offline(str(workdir), data_dir, batch_size=4)
    reference = JaxWorkdirPolicy(full, params, statistics, input_channel_order="BGR", fast_compile=True)
    val = me.read_episode(paths[-1], channel_order="RGB", action_dim=2)  # newest episode = val; frames still BGR
    reference.reset(val.instruction)
    predicted = np.stack([reference.step(frame)[0] for frame in val.images])
    expected = offline_metrics(predicted, val.actions)
    assert metrics["frames"] == expected["frames"] == 5
    for key in ("mae", "rmse", "success@0.1", "direction_match"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-5), key
