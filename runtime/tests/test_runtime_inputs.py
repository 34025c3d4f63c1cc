"""Tokenizer parity with the training tokenizer, action (de)normalisation, image checks, msgpack wire format."""

import numpy as np
import pytest
from runtime_helpers import SENTENCES, statistics, tiny_tokenizer

from vla_runtime import wire
from vla_runtime.errors import InputError, RuntimeConfigError
from vla_runtime.policy_io import ActionStatistics, Preprocessing, TokenLayout, check_frame, to_model_frame
from vla_runtime.tokenizer import InstructionTokenizer


def test_tokenizer_matches_training_autotokenizer(tmp_path):
    transformers = pytest.importorskip("transformers")
    tok = tiny_tokenizer()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(tmp_path / "tok")
    auto = transformers.AutoTokenizer.from_pretrained(tmp_path / "tok")
    ours = InstructionTokenizer(
        str(tmp_path / "tok" / "tokenizer.json"), TokenLayout(instruction_length=9, pad_id=auto.pad_token_id)
    )
    texts = SENTENCES + ["left", "a completely unseen instruction with zebra words"]
    for text in texts:
        ref = auto(text, truncation=True, max_length=9, padding="max_length")
        ids, mask = ours(text)
        assert ids.tolist() == ref["input_ids"], text
        assert mask.tolist() == [bool(m) for m in ref["attention_mask"]], text
    assert ids[0] == 0 and 2 in ids.tolist()  # <s> ... </s> kept under truncation
    with pytest.raises(InputError, match="empty"):
        ours("   ")


@pytest.mark.parametrize("mode", ["bounds", "bounds_q99", "normal"])
def test_denormalise_round_trip(mode):
    stats = ActionStatistics.from_dict(statistics(3, mode))
    rng = np.random.default_rng(1)
    lo, hi = (stats.q01, stats.q99) if mode == "bounds_q99" else (stats.min, stats.max)
    robot = lo + rng.random((50, 3)) * (hi - lo)  # inside the seen range
    back = stats.denormalize(stats.normalize(robot))
    np.testing.assert_allclose(back, robot, atol=1e-9)
    if mode != "normal":
        assert np.abs(stats.normalize(robot)).max() <= 1.0
    # Out-of-range model outputs never command more than the data ever did.
    wild = stats.denormalize(np.full((1, 3), 50.0))
    assert np.all(wild <= hi + 1e-12)


@pytest.mark.parametrize("mode", ["bounds", "bounds_q99", "normal", "none"])
def test_denormalise_clips_as_numpy_clip_and_keeps_nan(mode):
    """The runtime's clip (two ufuncs, cheaper per robot step) is numpy's clip on ordered bounds, and a NaN the
    model emits stays NaN, so `Policy.step`'s finiteness gate still refuses it."""
    stats = ActionStatistics.from_dict(statistics(3, mode))
    lo, hi = (stats.q01, stats.q99) if mode == "bounds_q99" else (stats.min, stats.max)
    x = np.random.default_rng(2).normal(0.0, 3.0, (64, 3))
    x[5, 1] = np.nan
    ours = stats.denormalize(x)
    if mode in ("bounds", "bounds_q99"):
        ref = np.clip((np.clip(x, -1.0, 1.0) + 1.0) / 2.0 * np.maximum(hi - lo, 1e-8) + lo, lo, hi)
    elif mode == "normal":
        ref = np.clip(x * (stats.std + 1e-8) + stats.mean, lo, hi)
    else:
        ref = np.clip(x, lo, hi)
    np.testing.assert_array_equal(ours, ref)  # NaN compares equal to NaN here
    assert np.isnan(ours[5, 1]) and np.isfinite(np.delete(ours.ravel(), 5 * 3 + 1)).all()


def test_masked_dim_passes_through():
    d = statistics(3)
    d["action"]["mask"] = [True, True, False]
    stats = ActionStatistics.from_dict(d)
    y = np.array([[0.0, 0.0, 0.73]])
    assert stats.denormalize(y)[0, 2] == 0.73
    with pytest.raises(RuntimeConfigError, match="normalization"):
        ActionStatistics.from_dict({**d, "normalization": "minmax"})


def test_declared_gripper_returns_the_datasets_convention_and_old_files_pass_through():
    d = statistics(4)
    d["action"]["mask"] = [True, True, True, False]
    old = ActionStatistics.from_dict(d)  # an export written before the "gripper" key: today's behaviour
    meta = ActionStatistics.from_dict({**d, "gripper": {"convention": "[-1 open, +1 close]"}})
    opening = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.25], [0.0, 0.0, 0.0, 7.0]])
    np.testing.assert_allclose(old.denormalize(opening)[:, 3], [1.0, 0.0, 0.25, 7.0])
    np.testing.assert_allclose(meta.denormalize(opening)[:, 3], [-1.0, 1.0, 0.5, -1.0])  # open, closed, clipped
    np.testing.assert_allclose(meta.denormalize(opening)[:, :3], old.denormalize(opening)[:, :3])
    np.testing.assert_allclose(meta.normalize(meta.denormalize(opening[:3]))[:, 3], [1.0, 0.0, 0.25])
    assert meta.to_dict()["gripper"] == {"convention": "[-1 open, 1 closed]", "canonical": "[0 closed, 1 open]"}
    assert ActionStatistics.from_dict(meta.to_dict()).gripper == meta.gripper and "gripper" not in old.to_dict()
    for bad, match in (
        ({"convention": "[0 shut, 1 open]"}, "gripper convention"),
        ("[-1 open, 1 closed]", "'gripper' must be"),
        ({"convention": "[-1 open, 1 closed]", "canonical": "[-1 open, 1 closed]"}, "canonical"),
    ):
        with pytest.raises(RuntimeConfigError, match=match):
            ActionStatistics.from_dict({**d, "gripper": bad})
    d["action"]["mask"] = [True] * 4
    with pytest.raises(RuntimeConfigError, match="last action dim is normalised"):
        ActionStatistics.from_dict({**d, "gripper": {"convention": "[0 closed, 1 open]"}})


def test_frame_checks_and_resize():
    p = Preprocessing(image_size=(16, 16), input_channel_order="BGR")
    with pytest.raises(InputError, match="dtype"):
        check_frame(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(InputError, match="channels"):
        check_frame(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        check_frame(np.zeros((2, 8, 8, 3), np.uint8))
    frame = np.zeros((72, 128, 3), np.uint8)
    frame[..., 0] = 200  # blue in BGR
    out = to_model_frame(frame, p)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert out[..., 2].min() == 200 and out[..., 0].max() == 0  # BGR -> RGB


def test_wire_round_trip_and_rejects_bad_arrays():
    msg = {"type": "step", "image": np.arange(24, dtype=np.uint8).reshape(2, 4, 3), "x": np.float32(1.5)}
    back = wire.unpackb(wire.packb(msg))
    np.testing.assert_array_equal(back["image"], msg["image"])
    assert back["x"] == 1.5
    bad = wire.packb({"a": {"__ndarray__": True, "dtype": "<f4", "shape": [10], "data": b"\x00" * 8}})
    with pytest.raises(wire.WireError, match="needs 40 bytes"):
        wire.unpackb(bad)
    with pytest.raises(wire.WireError, match="not allowed"):
        wire.unpackb(wire.packb({"a": {"__ndarray__": True, "dtype": "|O", "shape": [1], "data": b"x" * 8}}))
    with pytest.raises(wire.WireError):
        wire.unpackb(b"\xc1garbage")


def test_model_pixels_are_scale_pixels_channels_first_bit_for_bit():
    """The runtime scales channels-first (vectorised loops, the convolution's own layout); the values must be
    `scale_pixels` on the channels-last frame, the formula the training pipeline uses, to the bit."""
    import torch

    from vla_runtime.policy import model_pixels, pixel_statistics
    from vla_runtime.policy_io import scale_pixels

    pre = Preprocessing(image_size=(20, 24))
    frames = np.random.default_rng(3).integers(0, 256, (2, 5, 20, 24, 3), dtype=np.uint8)
    reference = scale_pixels(
        frames.astype(np.float32), np.asarray(pre.mean, np.float32), np.asarray(pre.std, np.float32)
    ).transpose(0, 1, 4, 2, 3)
    for given in (None, pixel_statistics(pre, torch.device("cpu"))):
        out = model_pixels(torch.from_numpy(frames), pre, statistics=given)
        assert out.shape == (2, 5, 3, 20, 24) and out.dtype == torch.float32 and out.is_contiguous()
        np.testing.assert_array_equal(out.numpy(), reference)
    half = model_pixels(torch.from_numpy(frames[0, 0]), pre, torch.bfloat16)
    assert half.dtype == torch.bfloat16 and half.shape == (3, 20, 24)
