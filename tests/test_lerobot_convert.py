"""`vla-jax convert-episodes --format lerobot`: tiny LeRobot v3.0 / v2.1 datasets -> our RLDS; bad input; training."""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("pyarrow")

import lerobot_fixture as lf  # noqa: E402

from data_pipelines.errors import DataError  # noqa: E402
from vla_jax.cli import main  # noqa: E402

LENGTHS = (5, 7, 4)
SIZE = 32


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    episodes = lf.make_episodes(LENGTHS, size=64)
    root = tmp_path_factory.mktemp("lerobot")
    lf.write_v30(root / "v30", episodes, episodes_per_file=2)  # episodes 0, 1 share a file; 2 has its own
    lf.write_v21(root / "v21", episodes)
    return root, episodes


def _read(folder):
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(str(folder))
    return [
        {"steps": list(ep["steps"]), "meta": ep["episode_metadata"]}
        for ep in tfds.as_numpy(builder.as_dataset(split="train"))
    ]


@pytest.mark.parametrize("version", ["v30", "v21"])
def test_converts_frames_state_action_tasks_and_statistics(source, tmp_path, capsys, version):
    root, episodes = source
    assert (
        main(
            [
                "convert-episodes",
                "--format",
                "lerobot",
                "--src",
                str(root / version),
                "--out",
                str(tmp_path),
                "--image-size",
                str(SIZE),
                "--camera",
                "image",
                "--encoding",
                "png",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["episodes"] == 3 and printed["frames"] == sum(LENGTHS) and printed["frames_per_s"] > 0
    assert printed["resize_mode"] == "resize"
    folder = tmp_path / "lerobot_dataset" / "1.0.0"
    converted = _read(folder)
    assert [len(ep["steps"]) for ep in converted] == list(LENGTHS)
    for src, ep in zip(episodes, converted):
        assert ep["meta"]["task"].decode() == src["task"]
        assert ep["meta"]["resize_mode"] == b"resize"  # recorded per episode, as the mobile converter does
        for t, step in enumerate(ep["steps"]):
            np.testing.assert_array_equal(step["action"], src["action"][t])
            np.testing.assert_array_equal(step["observation"]["state"], src["state"][t])
            image = step["observation"]["image"]
            assert image.shape == (SIZE, SIZE, 3)
            # AV1 is lossy: the frame's brightness (distinct per frame) survives within a few levels.
            assert abs(float(image[SIZE // 2 :, SIZE // 2 :].mean()) - float(src["frames"][t, 32:, 32:].mean())) < 6
            assert image[1, 1, 0] > 200 and image[1, 1, 2] < 60  # the red corner: RGB order kept
            assert step["language_instruction"].decode() == src["task"]
    stats = json.loads((folder / "statistics.json").read_text())
    actions = np.concatenate([e["action"] for e in episodes])
    np.testing.assert_allclose(stats["action"]["action"]["mean"], actions.mean(0), rtol=1e-5, atol=1e-6)
    assert stats["action"]["num_trajectories"] == 3 and len(stats["state"]["action"]["mean"]) == 4
    assert json.loads((folder / "conversion.json").read_text())["codebase_version"] == version[:2] + "." + version[2:]


@pytest.mark.parametrize("mode", ["resize", "pad"])
def test_resize_mode_is_the_policy_io_resize(tmp_path, capsys, mode):
    """A tall 64x32 camera -> 32x32: `pad` keeps the aspect ratio with exact black bars, `resize` stretches."""
    episodes = lf.make_episodes((3,), size=64)
    for ep in episodes:
        ep["frames"] = np.ascontiguousarray(ep["frames"][:, :, :32])
    lf.write_v30(tmp_path / "src", episodes)
    args = ["convert-episodes", "--format", "lerobot", "--src", str(tmp_path / "src"), "--out", str(tmp_path)]
    assert main([*args, "--image-size", str(SIZE), "--resize-mode", mode, "--encoding", "png"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["resize_mode"] == mode
    (ep,) = _read(tmp_path / "lerobot_dataset" / "1.0.0")
    assert ep["meta"]["resize_mode"].decode() == mode
    for step in ep["steps"]:
        lit = step["observation"]["image"].max(axis=-1) > 0  # every source pixel is lit (red corner included)
        bars = np.concatenate([lit[:, :8], lit[:, 24:]], axis=1)  # pad: 64x32 scaled to 32x16, centred
        if mode == "pad":
            assert not bars.any() and lit[:, 8:24].all()
        else:
            assert lit.all()


def test_missing_camera_and_action_key_are_one_line_errors(source, tmp_path):
    root, _ = source
    with pytest.raises(DataError, match=r"camera 'wrist' not found; the dataset has cameras \['observation.image'\]"):
        main(
            [
                "--debug",
                "convert-episodes",
                "--format",
                "lerobot",
                "--src",
                str(root / "v30"),
                "--out",
                str(tmp_path),
                "--camera",
                "wrist",
            ]
        )
    with pytest.raises(DataError, match="no numeric feature 'actions' for the action"):
        main(
            [
                "--debug",
                "convert-episodes",
                "--format",
                "lerobot",
                "--src",
                str(root / "v30"),
                "--out",
                str(tmp_path),
                "--action-key",
                "actions",
            ]
        )
    assert (
        main(["convert-episodes", "--format", "lerobot", "--src", str(tmp_path / "nothing"), "--out", str(tmp_path)])
        == 2
    )


def _copy(source, tmp_path, version="v30"):
    root, _ = source
    dst = tmp_path / version
    shutil.copytree(root / version, dst)
    return dst


def _convert(src, out):
    from data_pipelines.convert_lerobot import convert

    return convert(str(src), str(out), image_size=SIZE, progress=False)


def test_undecodable_video_is_named(source, tmp_path):
    src = _copy(source, tmp_path)
    video = next((src / "videos").rglob("file-001.mp4"))
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(DataError, match="file-001.mp4: cannot be decoded as video"):
        _convert(src, tmp_path / "out")
    assert not (tmp_path / "out" / "lerobot_dataset").exists()


def test_video_shorter_than_the_data_is_a_length_mismatch(source, tmp_path):
    _, episodes = source
    src = _copy(source, tmp_path)
    video = next((src / "videos").rglob("file-001.mp4"))  # episode 2 alone: 4 frames
    lf.encode_video(video, episodes[2]["frames"][:2], lf.FPS)
    with pytest.raises(
        DataError, match="episode 2 camera observation.image has 4 data frames but the video ends after 2 of them"
    ):
        _convert(src, tmp_path / "out")


def test_episode_table_length_disagreeing_with_the_data_rows(source, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = _copy(source, tmp_path)
    path = src / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    rows = pq.read_table(path).to_pylist()
    rows[1]["length"] = 9
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DataError, match="episode 1 has 7 data rows but the episode table says length 9"):
        _convert(src, tmp_path / "out")


def test_a_converted_lerobot_metaworld_dataset_trains(tmp_path):
    """LeRobot's Meta-World layout (observation.image, 4-D state and action) -> our `metaworld` dataset -> train."""
    import tiny_arm_config

    episodes = lf.make_episodes((6, 6), size=64, tasks=("Open a drawer", "Reach a goal position"))
    lf.write_v30(tmp_path / "src", episodes)
    assert (
        main(
            [
                "convert-episodes",
                "--format",
                "lerobot",
                "--src",
                str(tmp_path / "src"),
                "--name",
                "metaworld",
                "--out",
                str(tmp_path / "rlds"),
                "--image-size",
                str(tiny_arm_config.SIZE),
            ]
        )
        == 0
    )
    workdir = tiny_arm_config.train(tmp_path)
    stats = json.loads((workdir / "statistics.json").read_text())["metaworld"]
    assert stats["num_trajectories"] == 2 and stats["num_transitions"] == 12
    losses = [json.loads(line)["loss"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 4 and all(np.isfinite(losses))
