"""The robot step's per-step overhead fixes (issue 16) keep the actions: a step reuses its episode's position ids
(Qwen's 3-D `get_rope_index` is not re-run every step), the slid LSTM window runs as one fused torch.lstm call, the
robot's LSTM runs advance together (`LSTMHead.window_step`), and the incremental step still equals re-running the
window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench import backbone_latency
from data_pipelines.tokenize import train_tokenizer
from vla_runtime import Policy
from vla_runtime.errors import RuntimeConfigError
from vla_runtime.heads import LSTMHead

# one_step_continuous decodes as policy_head does; streaming: positions are block 0's plus a per-frame stride
CASES = [("policy_head", "lstm"), ("interleaved", "mlp"), ("interleaved", "mlp", "streaming")]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok") / "tok"
    train_tokenizer(["go left around the obstacle", "go right"], str(out), vocab_size=200)
    return str(out)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_qwen_step_reuses_positions_and_equals_the_full_window(tmp_path, tokenizer_dir, case):
    variant = {"interleaved_attention": case[2]} if len(case) > 2 else {}
    export = backbone_latency._export(
        backbone_latency.FAMILIES["qwen2_5_vl"](), case[0], case[1], tokenizer_dir, str(tmp_path / "e"), 32, variant
    )
    inc, full = Policy.load(export, incremental=True), Policy.load(export, incremental=False)
    calls = []
    original = inc.model.adapter.positions_for

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    inc.model.adapter.positions_for = counting
    for p in (inc, full):
        p.reset("go left around the obstacle")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (56, 56, 3), dtype=np.uint8) for _ in range(inc.window + 3)]
    per_step, diffs = [], []
    for frame in frames:  # window 4: grows, then slides three times
        calls.clear()
        a, b = inc.predict_normalized(frame), full.predict_normalized(frame)
        per_step.append(len(calls))
        diffs.append(float(np.abs(a - b).max()))
    assert max(diffs) < 1e-5, diffs
    # Once the window has slid (and its layout's positions were made once), a step computes no positions.
    assert per_step[inc.window + 1 :] == [0] * (len(frames) - inc.window - 1), per_step


def test_fused_lstm_window_equals_the_cell_loop():
    torch.manual_seed(0)
    head = LSTMHead(12, action_chunk=3, action_dim=2, has_gripper=True, hidden=8, layers=2).eval()
    features = torch.randn(2, 5, 12)
    with torch.inference_mode():
        loop = head(features, torch.ones(2, 5, dtype=torch.bool))["action"][:, -1]
        fused = head.last_of_full_window(features)
    assert torch.allclose(loop, fused, atol=1e-6), (loop - fused).abs().max()


@pytest.mark.parametrize("layers,window", [(1, 4), (2, 3), (2, 1)])
def test_lstm_window_step_equals_rerunning_the_window(layers, window):
    """The robot's LSTM runs (one per window start, advanced together) give, at every step of an episode that
    fills and then slides its window, what the training computation over that window gives: the masked cell loop
    over the zero-padded window while it grows, the fused slid-window call once it is full (the old step)."""
    torch.manual_seed(0)
    head = LSTMHead(12, action_chunk=3, action_dim=2, has_gripper=True, hidden=8, layers=layers).eval()
    features = torch.randn(1, window + 5, 12)
    chains, diffs = None, []
    with torch.inference_mode():
        for s in range(features.shape[1]):
            chains, action = head.window_step(chains, features[:, s], window)
            seen = features[:, max(0, s + 1 - window) : s + 1]
            pad = window - seen.shape[1]
            if pad:
                padded = torch.cat([seen.new_zeros(1, pad, 12), seen], dim=1)
                valid = torch.arange(window)[None] >= pad
                reference = head(padded, valid)["action"][:, -1]
            else:
                reference = head.last_of_full_window(seen)
            diffs.append(float((action - reference).abs().max()))
            assert chains[0][0].shape[0] == min(s + 1, window - 1)  # at most T - 1 runs carried over
    assert max(diffs) < 1e-6, diffs


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "full-window"])
def test_compiled_policy_compiles_every_shape_at_load(tmp_path, tokenizer_dir, incremental):
    """`Policy.compile_backbone` compiles at load what an episode needs: two episodes whose instructions have other
    token counts than the load's, each past the window's slide (the interleaved decoder's length changes with both),
    compile nothing more, and give the eager actions. dynamo's own capture with its "eager" backend (inductor's
    C++ build would take minutes); before, each new length compiled anew and after 8 the decoder ran eagerly."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    export = backbone_latency._export(
        backbone_latency.FAMILIES["llava"](), "interleaved", "mlp", tokenizer_dir, str(tmp_path / "e"), 32
    )
    eager, compiled = Policy.load(export, incremental=incremental), Policy.load(export, incremental=incremental)
    compiled.compile_backbone(backend="eager")
    assert compiled.instruction is None and compiled.steps == 0  # the load's dummy episodes leave no state
    graphs = counters["stats"]["unique_graphs"]
    assert graphs > 0
    rng = np.random.default_rng(0)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for instruction in ("go left around the obstacle", "go right"):
            for p in (eager, compiled):
                p.reset(instruction)
            for _ in range(eager.window + 2):
                frame = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                assert np.abs(eager.predict_normalized(frame) - compiled.predict_normalized(frame)).max() < 1e-6
    assert counters["stats"]["unique_graphs"] == graphs
    with pytest.raises(RuntimeConfigError, match="already compiled .mode 'default'.; load it anew"):
        compiled.fork().compile_backbone(backend="eager")  # a fork shares the compiled modules


@pytest.mark.parametrize("family, breaks", [("qwen2_vl", 1), ("qwen2_5_vl", 11)])
def test_qwen_tower_traces_into_few_graphs(tmp_path, tokenizer_dir, family, breaks):
    """Traced as `Policy.compile_backbone` traces (scalar outputs captured), the Qwen2-VL tower is one graph: its
    index tensors come precomputed, and the one break left is the call that looks them up (compiled out). Qwen2.5-VL
    keeps a break per window-attention layer (its windows' sizes are data that sdpa branches on), so dynamo runs that
    tower eagerly; the bound says so, and fails if either gets worse. With scalar capture off: 7 and 12 breaks."""
    import torch._dynamo

    export = backbone_latency._export(
        backbone_latency.FAMILIES[family](), "policy_head", "lstm", tokenizer_dir, str(tmp_path / "e"), 32
    )
    adapter = Policy.load(export).model.adapter
    pixels = torch.rand(1, 3, adapter.image_size, adapter.image_size)
    adapter.encode_images(pixels)  # the index tensors' cache filled, as after an episode's first step
    with torch._dynamo.config.patch(capture_scalar_outputs=True):
        explained = torch._dynamo.explain(adapter.encode_images)(pixels)
    assert explained.graph_break_count <= breaks, explained.break_reasons


def test_compile_refusals_are_one_line(tmp_path, tokenizer_dir):
    """An unknown mode, and dynamo's recompile limit reached while the load compiles (here forced to 1), are each
    one `RuntimeConfigError` naming what to change, not torch's traceback or a silent eager fallback."""
    import torch._dynamo

    export = backbone_latency._export(
        backbone_latency.FAMILIES["llava"](), "interleaved", "mlp", tokenizer_dir, str(tmp_path / "e"), 32
    )
    policy = Policy.load(export)
    with pytest.raises(RuntimeConfigError, match="compile mode 'fast' is not one of default, reduce-overhead"):
        policy.compile_backbone("fast", backend="eager")
    torch._dynamo.reset()  # this test's function shapes alone count against the limit
    with torch._dynamo.config.patch(recompile_limit=1):
        with pytest.raises(RuntimeConfigError, match="recompile_limit of 1 shapes .*raise torch._dynamo.config"):
            policy.compile_backbone(backend="eager")
