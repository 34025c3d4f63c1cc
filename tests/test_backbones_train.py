"""Each new backbone end to end on tiny random HF weights: HDF5 episodes -> RLDS, HF folder (+ a tiny tokenizer
trained offline) -> `vla-jax convert-hf` (two folders for the hybrid) -> `vla-jax train` with the family's
shipped post-training config -> a finite loss and a checkpoint whose backbone started from the converted weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_hf import save_tiny_random

from data_pipelines import testing as dt
from data_pipelines.tokenize import train_tokenizer
from vla_jax.cli import main
from vla_jax.convert.converted import load_converted
from vla_jax.train.checkpoint import load_for_inference

IMAGE = 16
ONE_LAYER = dict(vision_num_hidden_layers=1, vision_image_size=IMAGE)
FAMILIES = {
    "paligemma": (
        "configs/posttrain_mobile_paligemma.py",
        dict(ONE_LAYER, text_num_hidden_layers=1, text_vocab_size=320, image_token_index=319, vocab_size=320),
    ),
    "smolvlm": ("configs/posttrain_mobile_smolvlm.py", dict(ONE_LAYER, text_num_hidden_layers=1, text_vocab_size=320)),
    "llava": (  # 2 vision layers: the feature layer (-2) is layer 1, the other the unused tail
        "configs/posttrain_mobile_llava.py",
        dict(
            ONE_LAYER, vision_num_hidden_layers=2, text_num_hidden_layers=1, text_vocab_size=320, image_token_index=319
        ),
    ),
    "qwen2_5_vl": (  # patch 4 x 2x2 merge: 16-px frames are 2x2 merged tokens (real Qwen frames are 28-px multiples)
        "configs/posttrain_mobile_qwen2_5_vl.py",
        dict(
            vision_depth=1,
            vision_patch_size=4,
            vision_image_size=IMAGE,
            vision_fullatt_block_indexes=[0],
            text_num_hidden_layers=1,
            text_vocab_size=320,
            image_token_id=319,
            video_token_id=318,
            vision_start_token_id=316,
            vision_end_token_id=317,
        ),
    ),
    "idefics": (  # one cross-attention group of one LLaMA block, a one-block resampler; 318 + 2 additional ids
        "configs/posttrain_mobile_idefics.py",
        dict(
            ONE_LAYER,
            num_hidden_layers=1,
            cross_layer_interval=1,
            vocab_size=318,
            perceiver_resampler_depth=1,
            vision_patch_size=8,
        ),
    ),
    "clip-kosmos-2": (
        "configs/posttrain_mobile_clip_kosmos2.py",
        dict(ONE_LAYER, text_layers=1, text_vocab_size=320, vision_patch_size=8, latent_query_num=3),
    ),
}
W, C, L = 2, 2, 8
TINY = [
    f"--config.{k}={v}"
    for k, v in {
        "num_steps": 2,
        "batch_size": 8,  # conftest: 8 CPU devices in every test process, one row each
        "log_every": 1,
        "checkpoint.every": 2,
        "checkpoint.use_async": False,
        "optimizer.warmup_steps": 1,
        "xla_fast_compile": True,
        "progress_bar": False,
        "model.window_size": W,
        "model.action_chunk": C,
        "model.head_hidden_size": 16,
        "model.head_layers": 1,
        "model.backbone.dtype": "float32",
        "model.backbone.remat": False,
        "data.instruction_length": L,
        "data.config.worker_count": 0,
        "data.config.augment": False,
        "data.config.mirror_augment": False,
    }.items()
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_families")
    for i in range(3):
        dt.write_mobile_episode(
            str(root / "h5"), stamp=f"2024070{i + 1}_080000", side=("left", "right")[i % 2], num_frames=6, seed=i
        )
    assert (
        main(
            [
                "convert-episodes",
                "--src",
                str(root / "h5"),
                "--out",
                str(root / "rlds"),
                "--image-size",
                str(IMAGE),
                "--val-fraction",
                "0",
            ]
        )
        == 0
    )
    train_tokenizer(
        ["navigate around the obstacle on the left side", "navigate around the obstacle on the right side"],
        str(root / "tok"),
        vocab_size=300,
    )
    return root


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_convert_and_posttrain_each_backbone(data, family, tmp_path, capsys):
    config_file, overrides = FAMILIES[family]
    hf = save_tiny_random("kosmos-2" if family == "clip-kosmos-2" else family, tmp_path / "hf", seed=1, **overrides)
    for name in ("tokenizer.json", "tokenizer_config.json"):  # the tokenizer travels with the checkpoint
        (hf / name).write_bytes((data / "tok" / name).read_bytes())
    convert = ["convert-hf", "--src", str(hf), "--out", str(tmp_path / "converted")]
    if family == "clip-kosmos-2":
        clip = save_tiny_random("clip_vision_model", tmp_path / "clip", seed=2, num_hidden_layers=1, image_size=IMAGE)
        convert += ["--vision-src", str(clip)]
    assert main(convert) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model_type"] == family

    workdir = tmp_path / "run"
    arg = f"{data / 'rlds'},{tmp_path / 'converted'}"
    assert main(["train", "--config", f"{config_file}:{arg}", "--workdir", str(workdir), *TINY, "--quiet"]) == 0
    losses = [json.loads(line)["loss"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and np.all(np.isfinite(losses))
    saved = json.loads((workdir / "config.json").read_text())["model"]["backbone"]
    assert saved["model_type"] == family and saved["vision"]["image_size"] == IMAGE
    _, params, _ = load_for_inference(workdir)
    _, converted = load_converted(tmp_path / "converted")
    trained = params["backbone"]["text_model"]["embed_tokens"]["embedding"]
    start = converted["text_model"]["embed_tokens"]["embedding"]
    assert np.abs(trained - start).max() < 1e-2 < np.abs(start).max()  # started from the converted weights

    # ... and the trained policy exports and steps in the torch runtime with the same actions (<= 1e-4).
    capsys.readouterr()
    assert main(["export", "--workdir", str(workdir), "--out", str(tmp_path / "export"), "--verify"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["ok"] and result["max_abs_action_diff"] <= 1e-4, result
