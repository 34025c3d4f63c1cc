"""vla_runtime.policy_io: the one definition of frames, history, tokens, actions and gripper mapping."""

import json
import subprocess
import sys

import numpy as np
import pytest

from data_pipelines import frame_transforms as ft
from vla_runtime import RuntimeConfigError
from vla_runtime import policy_io as io

CAMERA = [(480, 640), (720, 1280), (300, 200)]


def _frame(hw, seed=0):
    """A camera-like frame: smooth gradients plus noise (pure noise would make every pixel a rounding tie test)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : hw[0], 0 : hw[1]]
    base = np.stack([x * 200 / hw[1], y * 200 / hw[0], (x + y) * 100 / sum(hw)], -1)
    return np.clip(base + rng.normal(0, 20, (*hw, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("mode", io.RESIZE_MODES)
def test_tf_data_resize_equals_policy_io_within_one_level(mode):
    """The RLDS tf.data path keeps a graph op: it must give policy_io's frame to within one uint8 level."""
    import tensorflow as tf

    for hw in CAMERA:
        frame = _frame(hw)
        ours = io.resize_frame(frame, (224, 224), mode).astype(int)
        theirs = ft.decode_and_resize_tf(tf.constant(frame), 224, mode).numpy().astype(int)
        diff = np.abs(ours - theirs)
        assert diff.max() <= 1 and diff.mean() < 0.01, (mode, hw, diff.max(), diff.mean())
        encoded = ft.decode_and_resize_tf(tf.io.encode_png(frame), 224, mode).numpy()
        np.testing.assert_array_equal(encoded, theirs)


def test_resize_is_the_stated_float32_arithmetic_to_the_bit():
    """resize_frame's bytes are its docstring's arithmetic: rows then columns, every tap in order, one float32
    multiply and one add each, from a float32 copy of the frame. Its faster form (the uint8 frame cast in the
    product, all-zero taps skipped, buffers reused, blocks of rows, the channels' weights written out) must not
    move a single byte: data converted offline and the robot's frames must agree. The sizes cover a last block
    shorter than the others, a frame of fewer rows than one block, upscaling and a 2 x 2 frame."""

    def reference(x, axis, n_out):
        index, weight = io._resize_taps(x.shape[axis], n_out)
        shape = [1] * x.ndim
        shape[axis] = n_out
        out = np.zeros(x.shape[:axis] + (n_out,) + x.shape[axis + 1 :], np.float32)
        for k in range(index.shape[1]):
            out = out + np.take(x, index[:, k], axis=axis) * weight[:, k].astype(np.float32).reshape(shape)
        return out

    cases = (((480, 640), (224, 224)), ((37, 100), (48, 48)), ((720, 1280), (112, 160)), ((1080, 1920), (384, 384)))
    for hw, size in cases + (((2, 2), (5, 3)), ((300, 7), (31, 64))):
        frame = _frame(hw)
        expected = reference(reference(frame.astype(np.float32), 0, size[0]), 1, size[1])
        expected = np.clip(np.rint(expected), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(io.resize_frame(frame, size, "resize"), expected)


def test_resize_geometry_and_identity():
    frame = _frame((48, 48))
    for mode in io.RESIZE_MODES:
        np.testing.assert_array_equal(io.resize_frame(frame, (48, 48), mode), frame)  # nothing to do: same bytes
    assert io.fit_geometry(720, 1280, (224, 224), "pad") == ((0, 0, 720, 1280), (126, 224), (49, 0))
    assert io.fit_geometry(720, 1280, (224, 224), "center_crop") == ((0, 280, 720, 720), (224, 224), (0, 0))
    flat = np.full((300, 200, 3), 90, np.uint8)
    for mode in io.RESIZE_MODES:  # the filter's weights sum to one: a flat frame stays flat
        out = io.resize_frame(flat, (64, 64), mode)
        assert set(np.unique(out)) <= ({0, 90} if mode == "pad" else {90})
    with pytest.raises(RuntimeConfigError, match="resize_mode 'squash'"):
        io.Preprocessing(image_size=(8, 8), resize_mode="squash")


def test_history_pads_with_masked_zero_frames():
    a, b = np.full((2, 2, 3), 7, np.uint8), np.full((2, 2, 3), 9, np.uint8)
    frames, mask = io.pad_history([a], 3)
    assert mask.tolist() == [False, False, True] and frames[:2].max() == 0 and frames[2].min() == 7
    frames, mask = io.pad_history([a, b, a, b], 3)  # the newest window_size frames, oldest first
    assert mask.all() and [f[0, 0, 0] for f in frames] == [9, 7, 9]


def test_token_layout_pads_right_and_refuses_overflow():
    layout = io.TokenLayout(instruction_length=5, pad_id=1)
    ids, mask = io.layout_tokens([0, 42, 2], layout)
    assert ids.tolist() == [0, 42, 2, 1, 1] and mask.tolist() == [True] * 3 + [False] * 2
    assert io.TokenLayout.from_dict(layout.to_dict()) == layout
    with pytest.raises(Exception, match="exceed instruction_length=5"):
        io.layout_tokens(list(range(6)), layout)


@pytest.mark.parametrize("mode", io.NORMALIZATION_MODES)
def test_one_clipping_rule_in_every_mode(mode):
    stats = io.ActionStatistics.from_dict(
        {
            "normalization": mode,
            "action": {
                "mean": [0.0, 0.5],
                "std": [1.0, 0.1],
                "min": [-1.0, 0.0],
                "max": [1.0, 1.0],
                "q01": [-0.9, 0.1],
                "q99": [0.9, 0.9],
                "mask": [True, False],
            },
        }
    )
    lo, hi = (stats.q01, stats.q99) if mode == "bounds_q99" else (stats.min, stats.max)
    wild = stats.denormalize(np.array([[50.0, 0.7], [-50.0, 0.3]]))
    np.testing.assert_allclose(wild[:, 0], [hi[0], lo[0]])  # never beyond what training data covered
    np.testing.assert_allclose(wild[:, 1], [0.7, 0.3])  # masked dim (a gripper) passes through
    inside = np.array([[0.3, 0.2], [-0.5, 0.9]])
    np.testing.assert_allclose(stats.denormalize(stats.normalize(inside)), inside, atol=1e-9)
    assert io.ActionStatistics.from_dict(stats.to_dict()).to_dict() == stats.to_dict()


def test_gripper_mapping_round_trips():
    g = np.array([0.0, 0.25, 1.0])
    np.testing.assert_allclose(io.gripper_to_signed(g), [-1.0, -0.5, 1.0])
    np.testing.assert_allclose(io.signed_to_gripper(io.gripper_to_signed(g)), g)


def test_policy_io_imports_without_torch_jax_or_tensorflow():
    """Training and the robot both import it: it must not pull in either side's frameworks."""
    code = (
        "import sys\n"
        "import vla_runtime.policy_io as io\n"
        "io.resize_frame(io.check_frame(__import__('numpy').zeros((4, 6, 3), 'uint8')), (2, 2), 'pad')\n"
        "print(sorted({'torch', 'jax', 'tensorflow', 'transformers'} & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_format_1_exports_get_one_clear_line(tmp_path):
    from vla_runtime.bundle import read_config

    (tmp_path / "config.json").write_text(json.dumps({"format": "vla-runtime-export", "format_version": 1}))
    with pytest.raises(RuntimeConfigError, match="format_version 1 .* re-export the training workdir"):
        read_config(str(tmp_path))
