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
]


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_steps_after_the_first_embed_no_instruction(tmp_path, case):
    policy = Policy.load(write_tiny_export(str(tmp_path / "e"), structure=case[0], head=case[1]))
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
        # Only the discrete structure embeds, and then only its C*A - 1 decoded action tokens (one id each).
        expected = (
            [1] * (policy.action_chunk * policy.statistics.action_dim - 1) if case[0] == "one_step_discrete" else []
        )
        assert embedded == expected, embedded
    policy.reset("move forward slowly, then turn left")  # a new episode rebuilds them
    embedded.clear()
    policy.step(frames[0])
    assert embedded
