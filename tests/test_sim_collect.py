"""`vla-jax sim-collect` writes the users' HDF5 format, readable by h5py and by our mobile reader."""

import re

import h5py
import numpy as np
import pytest

from vla_jax.cli import main
from vla_jax.sim.scenarios import Scenario

NAME = re.compile(r"^episode_\d{8}_\d{6}_(1box|2box)_(hori|vert)_(left|right)_(core|variant)_(close|medium|far)\.h5$")


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    out = tmp_path_factory.mktemp("episodes")
    assert main(["sim-collect", "--episodes", "4", "--out", str(out), "--image-size", "32", "--seed", "3"]) == 0
    return out


def test_files_are_in_the_users_format(collected):
    paths = sorted(collected.glob("*.h5"))
    assert len(paths) == 4
    with_instruction = 0
    for path in paths:
        assert NAME.match(path.name), path.name
        with h5py.File(path, "r") as f:
            images, actions = f["images"], f["actions"]
            t = actions.shape[0]
            assert images.dtype == np.uint8 and images.shape == (t, 32, 32, 3) and images.compression == "gzip"
            assert actions.dtype == np.float32 and actions.shape == (t, 3)
            assert 8 <= t <= 18
            acts = actions[()]
            assert set(np.abs(acts).ravel().tolist()) <= {0.0, np.float32(1.15).item()}
            np.testing.assert_array_equal(acts[0], 0.0)
            np.testing.assert_array_equal(acts[-1], 0.0)
            assert np.all(acts[:, 2] == 0)
            events = [e.decode() for e in f["action_event_types"][()]]
            assert h5py.check_string_dtype(f["action_event_types"].dtype).encoding == "utf-8"
            assert events[0] == "episode_start" and events[-1] == "stop_action"
            assert set(events[1:-1]) == {"start_action"}
            side = Scenario.from_tokens(path.name).side
            first_lateral = acts[1:, 1][acts[1:, 1] != 0][0]  # the first sidestep is toward the instructed side
            assert np.sign(first_lateral) == (1 if side == "left" else -1)
            if "language_instruction" in f:
                with_instruction += 1
                li = f["language_instruction"]
                assert li.dtype == np.dtype("S256") and li.shape == (1,)
                assert side in li[0].decode()
            attrs = dict(f.attrs)
            for key in (
                "episode_name",
                "total_duration",
                "num_frames",
                "action_chunk_size",
                "obstacle_layout_type",
                "time_period",
                "collection_datetime",
                "collection_hour",
                "collection_minute",
            ):
                assert key in attrs, key
            assert attrs["num_frames"] == t and attrs["action_chunk_size"] == 8
            assert attrs["total_duration"] == pytest.approx((t - 1) * 0.4)
            assert attrs["episode_name"] == path.stem
    assert 0 < with_instruction < 4 or len(paths) < 4  # both kinds of files, like the real data


def test_images_are_bgr(collected):
    path = sorted(collected.glob("*.h5"))[0]
    with h5py.File(path, "r") as f:
        stored = f["images"][0]
    # The sky is blue-gray: in RGB its blue exceeds red, so the stored (BGR) first channel is the larger one.
    sky = stored[:3].reshape(-1, 3).astype(int).mean(0)
    assert sky[0] > sky[2]


def test_mobile_reader_reads_collected_files(collected):
    mobile = pytest.importorskip("data_pipelines.mobile_episodes")
    paths = mobile.list_episodes(str(collected))
    assert len(paths) == 4
    for path in paths:
        ep = mobile.read_episode(path)
        assert ep.images.shape[1:] == (32, 32, 3)
        side = Scenario.from_tokens(path).side
        assert f"on the {side} side" in ep.instruction
        assert ep.event_types[0] == "episode_start"
    train, val = mobile.split_train_val(paths, 0.25)
    assert len(train) == 3 and len(val) == 1


def test_collect_refuses_a_folder_with_episodes(collected, capsys):
    assert main(["sim-collect", "--episodes", "1", "--out", str(collected)]) == 2
    assert "already holds" in capsys.readouterr().err
