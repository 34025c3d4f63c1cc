"""The streaming interleaved window (policy.interleaved_attention "streaming"): the robot step (each block
decoded once, the action token over the cached blocks) equals re-running the window, growing and sliding, on
every rotary-position family; the families it cannot serve exactly are refused in one line."""

import numpy as np
import pytest
from runtime_helpers import tiny_backbone_config, tiny_policy_config, write_tiny_export

from vla_runtime import Policy, RuntimeConfigError
from vla_runtime.structures import PolicyModel

ROPE_FAMILIES = ("smolvlm", "llava", "qwen2_5_vl", "paligemma")


def _backbone(family):
    """The family's tiny backbone; PaliGemma 2's sliding window widened past the window (a bidirectional prefix
    per block, Gemma 2's softcapping and eager attention through the step's prepared mask)."""
    backbone = tiny_backbone_config(family)
    if family == "paligemma":
        backbone["text_config"] = {**backbone["text_config"], "sliding_window": 256}
    return backbone


def _frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (24 + 3 * i, 30, 3), dtype=np.uint8) for i in range(n)]


def _run(export, incremental, frames):
    policy = Policy.load(export, incremental=incremental)
    policy.reset("Navigate around the obstacle on the left side and reach the target")
    return np.stack([policy.predict_normalized(f) for f in frames])


@pytest.mark.parametrize("family", ROPE_FAMILIES)
def test_streaming_step_equals_the_full_window_and_differs_from_causal(family, tmp_path):
    frames = _frames(7)  # window 3: the growing window, then four slides
    kw = dict(backbone=_backbone(family), structure="interleaved", head="mlp")
    export = write_tiny_export(str(tmp_path / "s"), interleaved_attention="streaming", **kw)
    step, full = _run(export, True, frames), _run(export, False, frames)
    assert np.abs(step - full).max() <= 1e-5, np.abs(step - full).max(axis=(1, 2))
    assert np.abs(full).max() > 1e-3  # not trivially zero
    # The same weights under the causal window: the first frame sees only itself either way, later ones differ.
    causal = write_tiny_export(str(tmp_path / "c"), **kw)
    window = _run(causal, False, frames)
    assert np.abs(window[0] - full[0]).max() <= 1e-5
    assert np.abs(window[1:] - full[1:]).max() > 1e-4


def test_a_long_streaming_episode_stays_equal_to_the_full_window(tmp_path):
    """40 frames: far past where Gemma 2's sliding-window layers would start trimming a cache of their own."""
    kw = dict(backbone=_backbone("paligemma"), structure="interleaved", head="mlp", interleaved_attention="streaming")
    export = write_tiny_export(str(tmp_path / "s"), **kw)
    frames = _frames(40)
    step, full = _run(export, True, frames), _run(export, False, frames)
    assert np.abs(step - full).max() <= 1e-5, np.abs(step - full).max(axis=(1, 2))


@pytest.mark.parametrize("family,why", [("kosmos-2", "rotary-position"), ("idefics", "rotary-position")])
def test_streaming_refuses_absolute_positions_and_cross_attention(family, why, tmp_path):
    with pytest.raises(RuntimeConfigError, match=f"streaming' needs a {why}.*{family}"):
        write_tiny_export(
            str(tmp_path / "e"),
            model_type=family,
            structure="interleaved",
            head="mlp",
            interleaved_attention="streaming",
        )


def test_streaming_refuses_a_window_longer_than_a_sliding_window(tmp_path):
    # The tiny PaliGemma 2 has a 24-slot sliding window, shorter than its 3-block window.
    export = write_tiny_export(
        str(tmp_path / "p"),
        model_type="paligemma",
        structure="interleaved",
        head="mlp",
        interleaved_attention="streaming",
    )
    for incremental in (True, False):
        with pytest.raises(RuntimeConfigError, match="exceeds the backbone's sliding_window 24"):
            _run(export, incremental, _frames(1))


def test_an_unknown_interleaved_attention_is_one_config_error():
    policy = tiny_policy_config(structure="interleaved", head="mlp", interleaved_attention="sliding")
    with pytest.raises(RuntimeConfigError, match="policy.interleaved_attention 'sliding' is unknown"):
        PolicyModel(tiny_backbone_config(), policy)


def test_a_streaming_step_is_one_decoder_call_over_at_most_the_window(tmp_path):
    """The robot step decodes the new block and its action token in one call, whatever the episode's length, and
    keeps the keys of the newest T-1 blocks only (window 3: 2 blocks), each without its action token."""
    kw = dict(backbone=_backbone("smolvlm"), structure="interleaved", head="mlp", interleaved_attention="streaming")
    policy = Policy.load(write_tiny_export(str(tmp_path / "s"), **kw))
    adapter, calls = policy.model.adapter, []
    original = adapter.decode

    def counting(*args, **kwargs):
        calls.append(kwargs.get("pair_mask") is not None)
        return original(*args, **kwargs)

    adapter.decode = counting
    policy.reset("go left")
    kept, masks = [], []
    for frame in _frames(6):
        calls.clear()
        policy.step(frame)
        assert calls == [True]  # one call, under the streaming pair mask
        kept.append(policy._state.cache.length)
        masks.append(policy._state.step_bias)
    block = policy._state.frame.seq.embeds.shape[1] - 1  # a block's slots but its action token
    assert kept == [block, 2 * block, 2 * block, 2 * block, 2 * block, 2 * block]
    # The mask is made for each cache length the episode meets (empty, 1 block, 2 blocks), then reused as is.
    assert len({id(m) for m in masks}) == 3 and all(m is masks[2] for m in masks[2:])
    assert [tuple(m.shape[-2:]) for m in masks[:3]] == [(block + 1, (block + 1) * (i + 1) - i) for i in range(3)]
