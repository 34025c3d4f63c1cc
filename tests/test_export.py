"""Export parity: the JAX policy vs the exported torch runtime, for every structure x head.

float32 must agree to <= 1e-4 (measured 0..1.2e-7 with the runtime on transformers' Kosmos2Model).
Lower-precision exports are checked against the float32 JAX model with `verify.TOLERANCE` (fp16 1e-2,
bf16 5e-2, int8 5e-2 on normalised actions in [-1, 1]; measured fp16 <= 3e-4, bf16 <= 2.1e-3,
int8 <= 2.8e-3).
"""

import json
import os
import types

import numpy as np
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import torch  # noqa: E402

from vla_jax.export.export import export_policy  # noqa: E402
from vla_jax.export.verify import TOLERANCE, verify_export  # noqa: E402
from vla_jax.models.kosmos2 import Kosmos2Config  # noqa: E402
from vla_jax.vla import VLAConfig, init_policy  # noqa: E402

torch.set_num_threads(1)

CASES = [
    ("policy_head", "lstm"),
    ("policy_head", "gpt"),
    ("policy_head", "mlp"),
    ("interleaved", "mlp"),
    ("one_step_continuous", "mlp"),
    ("one_step_discrete", "discrete"),
    ("one_step_discrete", "discrete", "parallel"),  # discrete_decoding: one pass over learned query slots
]
STATS = {
    "mobile": {
        "action": {
            "mean": [0.0, 0.1, 0.0],
            "std": [0.5, 0.6, 0.2],
            "min": [-1.15, -1.15, -0.5],
            "max": [1.15, 1.15, 0.5],
            "q01": [-1.1, -1.1, -0.4],
            "q99": [1.1, 1.1, 0.4],
            "mask": [True, True, True],
        },
        "normalization": "bounds",
    }
}


GRIPPER = dict(action_dim=4, has_gripper=True)
GRIPPER_STATS = {
    "arm": {
        "action": {
            "mean": [0, 0, 0, 0.5],
            "std": [1, 1, 1, 0.5],
            "min": [-0.1, -2, -3, 0],
            "max": [0.1, 2, 3, 1],
            "q01": [-0.1, -2, -3, 0],
            "q99": [0.1, 2, 3, 1],
            "mask": [True, True, True, False],
        },
        "normalization": "bounds_q99",
    }
}


def case_config(structure, head, discrete_decoding="autoregressive"):
    kw = GRIPPER if (structure, head) == ("policy_head", "mlp") else {}
    return tiny_config(structure, head, discrete_decoding=discrete_decoding, **kw)


def tiny_config(structure, head, **kw):
    base = dict(
        backbone=Kosmos2Config.tiny(),
        structure=structure,
        head=head,
        window_size=3,
        action_chunk=2,
        action_dim=3,
        has_gripper=False,
        head_hidden_size=32,
        head_layers=2,
        head_heads=2,
        num_bins=64,
    )
    base.update(kw)
    return VLAConfig(**base)


def random_params(cfg, seed=0):
    """Every leaf random (zero-initialised action token and unit norms would hide mapping bugs); no jit needed."""
    shapes = jax.eval_shape(lambda: init_policy(cfg, 0))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda s: (rng.standard_normal(s.shape) * 0.2).astype(np.float32), shapes)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_float32_parity_every_structure_and_head(case, tokenizer_dir, tmp_path):
    cfg = case_config(*case)
    params = random_params(cfg)
    stats = GRIPPER_STATS if cfg.has_gripper else STATS
    export_policy(cfg, params, stats, tokenizer_dir, str(tmp_path / "f32"), "float32", instruction_length=12)
    result = verify_export(cfg, params, str(tmp_path / "f32"), fast_compile=True)
    assert result["ok"] and result["max_abs_action_diff"] <= 1e-4, result
    assert result["max_abs_action"] > 0.05  # the comparison is not between two zero outputs
    if case in (("policy_head", "lstm"), ("interleaved", "mlp")):
        for dtype in ("bfloat16", "float16", "int8"):
            out = str(tmp_path / dtype)
            export_policy(cfg, params, stats, tokenizer_dir, out, dtype, instruction_length=12)
            low = verify_export(cfg, params, out, fast_compile=True)
            assert low["max_abs_action_diff"] <= TOLERANCE[dtype], low
            assert low["model_bytes"] < 0.75 * result["model_bytes"]


def test_gripper_and_robot_units_round_trip(tokenizer_dir, tmp_path):
    """Arm + gripper; normalise robot-unit targets with the statistics, de-normalise the model units back."""
    from vla_runtime import Policy

    cfg = case_config("policy_head", "mlp")
    params = random_params(cfg, seed=4)
    out = str(tmp_path / "g")
    export_policy(cfg, params, GRIPPER_STATS, tokenizer_dir, out, "float32", instruction_length=12)
    assert verify_export(cfg, params, out, fast_compile=True)["ok"]
    policy = Policy.load(out)
    robot = np.array([[0.05, -1.0, 2.5, 0.8], [-0.1, 2.0, -3.0, 0.2]])
    model_units = policy.statistics.normalize(robot)
    np.testing.assert_allclose(model_units[:, :3], [[0.5, -0.5, 2.5 / 3], [-1.0, 1.0, -1.0]], atol=1e-9)
    np.testing.assert_allclose(policy.statistics.denormalize(model_units), robot, atol=1e-9)
    policy.reset("pick up the block")
    chunk = policy.step(np.full((40, 50, 3), 128, np.uint8))
    assert chunk.shape == (2, 4)
    assert 0.0 <= chunk[:, 3].min() and chunk[:, 3].max() <= 1.0  # gripper probability passes through
    assert np.all(np.abs(chunk[:, 0]) <= 0.1 + 1e-6)


def _write_workdir(workdir, cfg, params, stats):
    """A `vla-jax train` workdir (config.json, statistics.json, orbax checkpoint) written with the trainer's code."""
    import dataclasses

    from vla_jax.train.checkpoint import Checkpointer, write_json

    os.makedirs(workdir, exist_ok=True)
    model = cfg.to_dict()
    model["backbone"] = dataclasses.asdict(cfg.backbone)
    write_json(
        __import__("pathlib").Path(workdir) / "config.json",
        {"model": model, "data": {"source": "synthetic", "instruction_length": 8}, "seed": 0},
    )
    write_json(__import__("pathlib").Path(workdir) / "statistics.json", stats)
    ck = Checkpointer(workdir, every=1, keep=1, use_async=False)
    state = types.SimpleNamespace(
        step=np.int32(5), params=params, opt_state={"count": np.zeros((), np.int32)}, rng=np.zeros((2,), np.uint32)
    )
    ck.save(5, state, {"step": 5})
    ck.wait()
    ck.close()


def test_cli_export_workdir_with_verify(tmp_path, capsys):
    from vla_jax import cli

    cfg = case_config("policy_head", "lstm")  # same config as the parity case: its jit is reused
    params = random_params(cfg, seed=2)
    workdir, out = str(tmp_path / "w"), str(tmp_path / "export")
    _write_workdir(workdir, cfg, params, {"synthetic": STATS["mobile"]})
    assert cli.main(["export", "--workdir", workdir, "--out", out, "--verify", "--dtype", "float32"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["ok"] and line["max_abs_action_diff"] <= 1e-4
    files = json.loads(open(os.path.join(out, "config.json")).read())["files"]
    assert set(files) == {
        "model.safetensors",
        "tokenizer.json",
        "preprocessing.json",
        "statistics.json",
        "MODEL_CARD.md",
    }
    # Synthetic-data workdir: the exported word-level tokenizer keeps the generator's side token ids.
    from vla_runtime import Policy

    ids, _ = Policy.load(out).tokenizer("go left")
    assert ids[:4].tolist() == [0, 3, 5, 2]
    assert cli.main(["export", "--workdir", str(tmp_path / "nope"), "--out", out]) == 2
    assert "not a vla-jax training workdir" in capsys.readouterr().err


def test_export_backbone_is_a_checkpoint_transformers_loads(tokenizer_dir, tmp_path):
    """The export's backbone tensors and config are an HF checkpoint: `from_pretrained` takes them with nothing
    missing or unexpected, and its forward gives the runtime's hidden states."""
    import transformers
    from safetensors.torch import load_file, save_file

    from vla_runtime import Policy

    cfg = case_config("policy_head", "lstm")
    params = random_params(cfg, seed=5)
    out = str(tmp_path / "export")
    written = export_policy(cfg, params, STATS, tokenizer_dir, out, "float32", instruction_length=12)
    state = load_file(os.path.join(out, "model.safetensors"))
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    save_file(
        {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")},
        str(hf_dir / "model.safetensors"),
    )
    (hf_dir / "config.json").write_text(json.dumps(written["backbone"]))
    hf, info = transformers.Kosmos2Model.from_pretrained(str(hf_dir), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    adapter = Policy.load(out).model.adapter
    pixels = torch.randn(1, 3, cfg.backbone.vision.image_size, cfg.backbone.vision.image_size)
    with torch.no_grad():
        ref = hf.eval().get_image_features(pixels, return_dict=True).pooler_output
        assert (adapter.encode_images(pixels) / adapter.embed_scale - ref).abs().max() < 1e-5


def test_the_runtime_accepts_exactly_the_policy_choices_vla_jax_trains():
    """The runtime does not import vla_jax (it runs on the robot without JAX), so it spells the config's choices
    again; an export of a choice the runtime does not know would fail on the robot, not here."""
    import vla_jax.vla as trained
    import vla_runtime.structures as runtime

    for name in ("STRUCTURES", "DISCRETE_DECODINGS", "INTERLEAVED_ATTENTIONS"):
        assert getattr(runtime, name) == getattr(trained, name), name
