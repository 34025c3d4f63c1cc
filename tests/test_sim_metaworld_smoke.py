"""Meta-World end to end, as small as it gets: collect 2 tasks x 2 episodes -> train -> export -> sim-eval.

Training uses the registry's `metaworld` entry, which pads the 4-D actions to
`eef7` (dims 3-5 zero, gripper as openness) until declared action spaces land;
sim-eval maps the 7-D output back to Meta-World's [dx, dy, dz, gripper].
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("metaworld")
pytest.importorskip("vla_runtime")

from vla_jax.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZE = 32
TASKS = "reach-v3,drawer-close-v3"
CONFIG = '''
import dataclasses
import ml_collections
from vla_jax.models.kosmos2 import Kosmos2Config
from vla_jax.train.defaults import base_config
from vla_jax.train.model import backbone_config_dict


def get_config(arg):
    config = base_config()
    config.num_steps, config.batch_size, config.log_every = 4, 4, 1
    config.xla_fast_compile = True
    tiny = Kosmos2Config.tiny()
    backbone = dataclasses.replace(
        tiny, text=dataclasses.replace(tiny.text, vocab_size=300, layers=1, max_position_embeddings=64),
        vision=dataclasses.replace(tiny.vision, num_hidden_layers=1, image_size={size}))
    config.model = ml_collections.ConfigDict(dict(
        backbone=backbone_config_dict(backbone), structure="policy_head", head="lstm", window_size=2,
        fwd_pred_next_n=2, action_dim=7, has_gripper=True, head_hidden_size=16, head_layers=1))
    config.data.source = "loader"
    config.data.tokenizer = f"{{arg}}/tokenizer"
    config.data.instruction_length = 16
    config.data.config = ml_collections.ConfigDict(dict(
        kind="rlds_mixture", data_dir=f"{{arg}}/rlds", mixture="metaworld", window_size=2, action_chunk=2,
        action_dim=7, image_size={size}, max_text_len=16, normalization="bounds", augment=False,
        shuffle_buffer=64, stats_cache_dir=f"{{arg}}/stats"))
    config.optimizer.warmup_steps = 1
    config.checkpoint.every, config.checkpoint.keep = 4, 1
    return config
'''.format(size=SIZE)


def test_collect_train_export_eval(tmp_path, capsys):
    from data_pipelines.tokenize import train_tokenizer
    from vla_jax.sim.metaworld.tasks import INSTRUCTIONS

    assert main(["sim-collect", "--env", "metaworld", "--tasks", TASKS, "--episodes-per-task", "2",
                 "--image-size", str(SIZE), "--out", str(tmp_path / "rlds")]) == 0
    train_tokenizer(list(INSTRUCTIONS.values()), str(tmp_path / "tokenizer"), vocab_size=300)
    (tmp_path / "config.py").write_text(CONFIG)
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS="--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")
    proc = subprocess.run([sys.executable, "-m", "vla_jax.cli", "train", "--config", f"{tmp_path}/config.py:{tmp_path}",
                           "--workdir", str(tmp_path / "workdir"), "--quiet"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    stats = json.loads((tmp_path / "workdir" / "statistics.json").read_text())["metaworld"]
    assert stats["num_trajectories"] == 4 and stats["action"]["mask"] == [True] * 6 + [False]
    assert main(["export", "--workdir", str(tmp_path / "workdir"), "--out", str(tmp_path / "export")]) == 0
    out = tmp_path / "eval"
    assert main(["sim-eval", "--env", "metaworld", "--policy", str(tmp_path / "export"), "--tasks", TASKS,
                 "--episodes-per-task", "1", "--max-steps", "15", "--image-size", str(SIZE), "--gifs", "1",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policy"]["kind"] == "export"
    assert set(summary["per_task"]) == set(TASKS.split(",")) and list(summary["per_difficulty"]) == ["easy"]
    assert all(1 <= e["steps"] <= 15 for e in summary["episodes"]) and len(summary["episodes"]) == 2
    assert summary["published"]["rows"]["SmolVLA"]["average"] == 57.3
    assert (out / "success_by_difficulty.png").stat().st_size > 0
    assert len(list((out / "rollouts").glob("*.gif"))) == 1
    printed = capsys.readouterr().out
    assert "theirs: SmolVLA (0.45B)" in printed and "export (this run)" in printed
