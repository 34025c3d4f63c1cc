"""Tokenizer, frame transforms, device transfer and the data CLI commands."""

import json
import os

import jax
import numpy as np
from jax.sharding import Mesh

from data_pipelines import frame_transforms as ft
from data_pipelines import testing as dt
from data_pipelines.device import to_global_batch
from vla_runtime.policy_io import resize_frame


def test_train_tokenizer_round_trips_through_auto_tokenizer(tmp_path):
    from data_pipelines.tokenize import InstructionTokenizer, load_tokenizer, train_tokenizer

    texts = ["navigate around the obstacle on the left side", "navigate around the obstacle on the right side"]
    train_tokenizer(texts, str(tmp_path), vocab_size=300)
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(os.listdir(tmp_path))
    tok = load_tokenizer(str(tmp_path))
    ids = tok(texts[0])["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == texts[0]
    tokens, mask = InstructionTokenizer(tok, 24)([texts[0], texts[1].encode()])
    assert tokens.dtype == np.int32 and tokens.shape == (2, 24)
    assert not np.array_equal(tokens[0], tokens[1])  # left/right are different tokens
    assert np.all(tokens[~mask] == tok.pad_token_id) and mask[0].sum() == len(ids)


def test_augmentation_tf_and_numpy_are_seeded_uint8_and_change_pixels():
    import tensorflow as tf

    frames = np.random.default_rng(0).integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)
    a = ft.augment_tf(tf.constant(frames), tf.constant([1, 2], tf.int64)).numpy()
    b = ft.augment_tf(tf.constant(frames), tf.constant([1, 2], tf.int64)).numpy()
    c = ft.augment_tf(tf.constant(frames), tf.constant([1, 3], tf.int64)).numpy()
    assert a.dtype == np.uint8 and a.shape == frames.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, frames)
    n1 = ft.augment_np(frames, np.random.default_rng(5))
    n2 = ft.augment_np(frames, np.random.default_rng(5))
    assert n1.dtype == np.uint8 and n1.shape == frames.shape
    np.testing.assert_array_equal(n1, n2)
    assert not np.array_equal(n1, frames)


def test_resize_with_and_without_padding():
    import tensorflow as tf

    img = np.full((20, 40, 3), 200, np.uint8)
    png = tf.io.encode_png(img)
    stretched = ft.decode_and_resize_tf(png, 16).numpy()
    padded = ft.decode_and_resize_tf(png, 16, "pad").numpy()
    assert stretched.shape == padded.shape == (16, 16, 3) and stretched.dtype == np.uint8
    assert np.all(stretched == 200)
    assert np.all(padded[0] == 0) and np.all(padded[8] == 200)  # black bars above/below keep the aspect ratio
    assert np.all(resize_frame(img, (16, 16), "pad")[0] == 0) and resize_frame(img, (16, 16)).shape == (16, 16, 3)


def test_to_global_batch_on_8_devices():
    mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("data", "fsdp"))  # conftest: 8 fake CPU devices
    batch = {
        "image": np.arange(8 * 2 * 4 * 4 * 3, dtype=np.uint8).reshape(8, 2, 4, 4, 3),
        "dataset_id": np.arange(8, dtype=np.int32),
    }
    g = to_global_batch(batch, mesh)
    assert g["image"].shape == (8, 2, 4, 4, 3) and g["image"].dtype == np.uint8
    assert g["image"].sharding.spec[0] == ("data", "fsdp")
    shards = sorted(g["dataset_id"].addressable_shards, key=lambda s: s.index[0].start)
    assert [int(s.data[0]) for s in shards] == list(range(8))  # one row per device
    np.testing.assert_array_equal(np.asarray(g["image"]), batch["image"])


def test_cli_convert_stats_inspect_end_to_end(tmp_path, capsys):
    from vla_jax.cli import main

    src = tmp_path / "h5"
    for i in range(4):
        dt.write_mobile_episode(
            str(src), stamp=f"2024060{i + 1}_080000", side=("left", "right")[i % 2], num_frames=5, seed=10 + i
        )
    dt.write_mobile_episode(str(src), stamp="20240605_080000", num_frames=1)  # too short -> skipped, counted
    rl = tmp_path / "rlds"
    assert (
        main(
            [
                "convert-episodes",
                "--src",
                str(src),
                "--out",
                str(rl),
                "--image-size",
                "24",
                "--val-fraction",
                "0.2",
                "--skip-bad-episodes",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["splits"] == {"train": 3, "val": 1} and summary["skipped"] == 1
    assert summary["formats"] == ["array_record", "tfrecord"]

    cache = tmp_path / "stats"
    assert main(["stats", "--mixture", "mobile", "--data-dir", str(rl), "--cache-dir", str(cache)]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    acts = np.concatenate([dt.mobile_episode_arrays(5, seed=10 + i)[1][:, :2] for i in range(3)])  # train split
    np.testing.assert_allclose(stats["action"]["mean"], acts.mean(0), atol=1e-6)
    np.testing.assert_allclose(stats["action"]["max"], acts.max(0), atol=1e-6)

    grid = tmp_path / "grid.png"
    assert (
        main(
            [
                "inspect-data",
                "--mixture",
                "mobile",
                "--data-dir",
                str(rl),
                "--batches",
                "2",
                "--batch-size",
                "4",
                "--image-size",
                "24",
                "--window-size",
                "2",
                "--action-chunk",
                "3",
                "--out",
                str(grid),
                "--stats-cache-dir",
                str(cache),
                "--no-augment",
            ]
        )
        == 0
    )
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    batches = [x for x in lines if "batch" in x]
    assert len(batches) == 2 and batches[0]["shapes"]["action"] == [4, 2, 3, 2]
    assert batches[0]["dtypes"]["image"] == "uint8" and batches[0]["frames_per_s"] > 0
    assert all(-1.0 <= v <= 1.0 for v in batches[0]["action_min"] + batches[0]["action_max"])
    assert grid.stat().st_size > 1000

    # (a fresh --out: an existing dataset there is refused first, before any source is looked at)
    assert main(["convert-episodes", "--src", str(tmp_path / "nope"), "--out", str(tmp_path / "rlds2")]) == 2
    assert "episode folder does not exist" in capsys.readouterr().err


def test_training_side_truncation_of_a_long_instruction_is_said_once(tmp_path, caplog):
    from data_pipelines.tokenize import InstructionTokenizer, train_tokenizer

    tok = train_tokenizer(["go left", "go right"], str(tmp_path), vocab_size=280)
    it = InstructionTokenizer(tok, 8)
    with caplog.at_level("WARNING", logger="data_pipelines"):
        long = "go left " * 1250  # 10,000 characters
        for _ in range(3):
            tokens, mask = it([long, "go left"])
    assert mask[0].all() and it.truncated == 1
    assert len([r for r in caplog.records if "truncated to instruction_length 8" in r.getMessage()]) == 1
