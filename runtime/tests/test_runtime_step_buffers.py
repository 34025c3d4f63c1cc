"""The incremental step's per-episode buffers: built once per episode, so a step embeds no instruction tokens."""

import numpy as np
import pytest
from runtime_helpers import write_tiny_export

from vla_runtime import Policy

CASES = [
    ("policy_head", "lstm"),
    ("interleaved", "mlp"),
    ("one_step_continuous", "mlp"),
    ("one_step_discrete", "discrete"),
    ("one_step_discrete", "discrete", "parallel"),
]


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_steps_after_the_first_embed_no_instruction(tmp_path, case):
    decoding = {"discrete_decoding": case[2]} if len(case) > 2 else {}
    policy = Policy.load(write_tiny_export(str(tmp_path / "e"), structure=case[0], head=case[1], **decoding))
    adapter = policy.model.adapter
    embedded = []
    original = adapter.embed_tokens

    def counting(ids):
        embedded.append(int(ids.numel()))
        return original(ids)

    adapter.embed_tokens = counting
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(6)]  # window 3: grows, then slides
    policy.reset("Navigate around the obstacle on the left side and reach the target")
    policy.step(frames[0])
    assert embedded, "the first step builds the episode's blocks from the instruction"
    for frame in frames[1:]:
        embedded.clear()
        policy.step(frame)
        # Only the autoregressive discrete structure embeds, and then only its C*A - 1 decoded action tokens
        # (one id each); parallel decoding's queries are in the episode's block.
        autoregressive = case[0] == "one_step_discrete" and len(case) == 2
        expected = [1] * (policy.action_chunk * policy.statistics.action_dim - 1) if autoregressive else []
        assert embedded == expected, embedded
    policy.reset("move forward slowly, then turn left")  # a new episode rebuilds them
    embedded.clear()
    policy.step(frames[0])
    assert embedded


@pytest.mark.parametrize("decoding", ["autoregressive", "parallel"])
def test_discrete_step_decoder_calls(tmp_path, decoding):
    """Parallel decoding is ONE decoder call per robot step; autoregressive greedy decoding makes C*A."""
    export = write_tiny_export(
        str(tmp_path / "e"), structure="one_step_discrete", head="discrete", discrete_decoding=decoding
    )
    policy = Policy.load(export)
    adapter = policy.model.adapter
    calls = []
    original = adapter.decode

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    adapter.decode = counting
    rng = np.random.default_rng(0)
    policy.reset("go left")
    for _ in range(4):
        calls.clear()
        policy.step(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
        tokens = policy.action_chunk * policy.statistics.action_dim
        assert len(calls) == (1 if decoding == "parallel" else tokens), (decoding, len(calls))
