"""Training's guards without compiling a model: the step's non-finite select, checkpoint integrity and
fallback, config and workdir refusals, metrics.jsonl after a resume.

Each test breaks something the way it breaks in practice (a NaN learning rate, a NaN target, a flipped
byte, a truncated file, `keep=0`, a read-only workdir) and asserts the behaviour issue 13 asks for.
"""

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vla_jax.errors import VLAJaxError
from vla_jax.train import checkpoint as ckpt
from vla_jax.train import validate
from vla_jax.train.config import load_config
from vla_jax.train.integrity import CorruptCheckpoint
from vla_jax.train.nonfinite import NonFiniteGuard, NonFiniteStop
from vla_jax.train.state import TrainState
from vla_jax.train.step import make_step_fn

B, T, C, A = 2, 1, 1, 2


def _batch(action=0.5):
    return {
        "action": jnp.full((B, T, C, A), action, jnp.float32),
        "action_mask": jnp.ones((B, T, C), bool),
        "action_dim_mask": jnp.ones((B, A), bool),
    }


def _toy_step(learning_rate):
    """A one-vector 'model' through the real step function (AdamW, masks, metrics)."""

    def apply_fn(variables, batch, deterministic=False, rngs=None):
        return {"action": jnp.broadcast_to(variables["params"]["w"], batch["action"].shape)}

    def loss_fn(outputs, batch):
        loss = jnp.mean((outputs["action"] - batch["action"]) ** 2)
        return loss, {"abs_error": loss}

    optimizer = optax.adamw(learning_rate)
    params = {"w": jnp.zeros((A,), jnp.float32)}
    state = TrainState.create(params, optimizer, jax.random.key_data(jax.random.key(0)))
    step = jax.jit(make_step_fn(apply_fn, loss_fn, optimizer, optax.constant_schedule(learning_rate), {"w": True}))
    return state, step


@pytest.mark.parametrize("learning_rate, action", [(float("nan"), 0.5), (1e-2, float("nan")), (1e38, 0.5)])
def test_a_non_finite_step_changes_nothing_but_the_counter(learning_rate, action):
    """NaN learning rate, NaN target, and an update that overflows: params and Adam moments stay as they were."""
    state, step = _toy_step(learning_rate)
    before = jax.device_get((state.params, state.opt_state))
    new, metrics = step(state, _batch(action))
    assert float(metrics["finite"]) == 0.0
    assert int(new.step) == 1
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(jax.device_get((new.params, new.opt_state)))):
        np.testing.assert_array_equal(a, b)


def test_a_finite_step_still_trains():
    state, step = _toy_step(1e-1)
    new, metrics = step(state, _batch())
    assert float(metrics["finite"]) == 1.0 and np.isfinite(float(metrics["update_norm"]))
    assert not np.array_equal(np.asarray(new.params["w"]), np.zeros(A))


def test_guard_stops_with_one_line_naming_the_step_or_counts_skips():
    bad = {
        "finite": jnp.float32(0),
        "loss": jnp.float32(np.nan),
        "grad_norm": jnp.float32(1.0),
        "update_norm": jnp.float32(np.inf),
    }
    good = {**bad, "finite": jnp.float32(1), "loss": jnp.float32(0.1), "update_norm": jnp.float32(0.1)}
    guard = NonFiniteGuard("stop", last_checkpoint=4)
    guard.observe(5, good)
    guard.observe(6, bad)  # read one step late ...
    with pytest.raises(NonFiniteStop) as info:
        guard.flush()  # ... or at the latest before a save
    message = str(info.value)
    assert "\n" not in message and message.startswith("step 6: non-finite loss=nan, update_norm=inf")
    assert "step 4" in message and "on_nonfinite=skip" in message
    skip = NonFiniteGuard("skip", last_checkpoint=None)
    for i, metrics in enumerate([bad, good, bad, bad]):
        skip.observe(i + 1, metrics)
    skip.flush()
    assert skip.skipped == 3


# ------------------------------------------------------------------------------------------- config


def _tiny(*overrides):
    return load_config("configs/tiny.py", list(overrides))


@pytest.mark.parametrize(
    "key, value, needle",
    [
        ("checkpoint.keep", "0", "checkpoint.keep=0: must be an integer >= 1"),
        ("checkpoint.every", "0", "checkpoint.every=0"),
        ("num_steps", "-1", "num_steps=-1"),
        ("batch_size", "0", "batch_size=0"),
        ("batch_size", "-8", "batch_size=-8"),
        ("log_every", "0", "log_every=0"),
        ("optimizer.grad_accum_steps", "0", "grad_accum_steps=0"),
        ("optimizer.learning_rate", "nan", "learning_rate=nan: must be a finite number"),
        ("optimizer.learning_rate", "inf", "learning_rate=inf"),
        ("optimizer.learning_rate", "-1e-3", "learning_rate=-0.001"),
        ("optimizer.b2", "1.5", "b2=1.5"),
        ("optimizer.eps", "0", "eps=0"),
        ("on_nonfinite", "ignore", "on_nonfinite='ignore'"),
    ],
)
def test_nonsense_config_is_refused_with_one_line(key, value, needle):
    with pytest.raises(VLAJaxError) as info:
        validate.check_train_config(_tiny((key, value)))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_the_shipped_configs_pass_validation():
    for name in ("tiny", "demo", "pretrain_oxe_kosmos2", "posttrain_mobile_kosmos2"):
        validate.check_train_config(load_config(f"configs/{name}.py"))


def test_workdir_that_is_a_file_or_read_only_is_one_line(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(VLAJaxError, match="is a file, not a folder"):
        validate.check_workdir(a_file)
    with pytest.raises(VLAJaxError, match="cannot be created"):
        validate.check_workdir(a_file / "under_a_file")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        if os.access(read_only, os.W_OK):  # root ignores permission bits: a read-only mount stands in
            pytest.skip("running as root: permission bits do not stop writes")
        with pytest.raises(VLAJaxError, match="not writable"):
            validate.check_workdir(read_only)
    finally:
        read_only.chmod(0o700)


def test_workdir_on_a_read_only_filesystem_is_one_line(tmp_path):
    """/proc is read-only for everyone, root included."""
    with pytest.raises(VLAJaxError, match="--workdir /proc/vla_jax_run"):
        validate.check_workdir(Path("/proc/vla_jax_run"))


# ------------------------------------------------------------------------------------------- checkpoints


def _state(seed: int) -> TrainState:
    rng = np.random.default_rng(seed)
    params = {
        "w": jnp.asarray(rng.standard_normal((64, 32)), jnp.float32),
        "b": jnp.asarray(rng.standard_normal((32,)), jnp.float32),
    }
    optimizer = optax.adam(1e-3)
    state = TrainState.create(params, optimizer, jax.random.key_data(jax.random.key(seed)))
    _, opt_state = optimizer.update(params, state.opt_state, params)  # non-zero moments: real data on disk
    return state.replace(step=jnp.int32(seed), opt_state=opt_state)


def _save_two(workdir: Path) -> ckpt.Checkpointer:
    saver = ckpt.Checkpointer(workdir, every=1, keep=3, use_async=False)
    for step in (1, 2):
        saver.save(step, _state(step), {"position": step})
    saver.wait()
    saver.close()
    return ckpt.Checkpointer(workdir, every=1, keep=3, use_async=False)


def _abstract():
    return jax.eval_shape(lambda: _state(0))


def _largest_file(folder: Path) -> Path:
    """The biggest array-data file of an orbax item (the per-process OCDBT data files)."""
    return max((p for p in folder.glob("ocdbt.process_*/d/*")), key=lambda p: p.stat().st_size)


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _assert_state_equal(got, want):
    for a, b in zip(jax.tree.leaves(jax.device_get(got)), jax.tree.leaves(jax.device_get(want))):
        np.testing.assert_array_equal(a, b)


def test_intact_checkpoint_restores_verified(tmp_path):
    reader = _save_two(tmp_path)
    step, state, data = reader.restore_newest_intact(_abstract())
    assert step == 2 and data == {"position": 2}
    _assert_state_equal(state, _state(2))


@pytest.mark.parametrize("damage", ["flip_params", "flip_train", "truncate_params", "edit_data", "delete_file"])
def test_damaged_newest_checkpoint_falls_back_to_the_older_intact_one(tmp_path, damage, caplog):
    reader = _save_two(tmp_path)
    newest = tmp_path / "checkpoints" / "2"
    if damage == "flip_params":
        _flip_byte(_largest_file(newest / "params"))
    elif damage == "flip_train":
        _flip_byte(_largest_file(newest / "train"))
    elif damage == "truncate_params":
        victim = _largest_file(newest / "params")
        victim.write_bytes(victim.read_bytes()[:100])
    elif damage == "edit_data":
        (newest / "data" / "metadata").write_text(json.dumps({"process_0": {"position": 7}}))
    else:
        _largest_file(newest / "params").unlink()
    with caplog.at_level("WARNING", logger="vla_jax.train"):
        step, state, data = reader.restore_newest_intact(_abstract())
    assert step == 1 and data == {"position": 1}
    _assert_state_equal(state, _state(1))
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].startswith("checkpoint step 2") and "\n" not in errors[0]
    assert str(newest) in errors[0]  # names the item folder or the damaged file
    assert any("falling back: resuming from step 1" in r.getMessage() for r in caplog.records)
    assert not newest.exists() and len(list((tmp_path / ckpt.CORRUPT_DIR).iterdir())) == 1
    # The run can save step 2 again (orbax would refuse an existing step).
    reader.save(2, _state(2), {"position": 2})
    reader.wait()


def test_every_checkpoint_damaged_is_one_line_not_a_fresh_start(tmp_path):
    reader = _save_two(tmp_path)
    for step in ("1", "2"):
        _flip_byte(_largest_file(tmp_path / "checkpoints" / step / "params"))
    with pytest.raises(CorruptCheckpoint, match="no checkpoint restores \\(step 2, step 1; newest: checkpoint step 2"):
        reader.restore_newest_intact(_abstract())
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1", "2"]  # nothing moved


def test_export_side_refuses_a_damaged_checkpoint_and_names_an_intact_step(tmp_path):
    _save_two(tmp_path).close()
    _flip_byte(_largest_file(tmp_path / "checkpoints" / "2" / "params"))
    with pytest.raises(CorruptCheckpoint) as info:
        ckpt.load_params(tmp_path)
    assert "checkpoint step 2" in str(info.value) and "pass --step 1" in str(info.value)
    step, params = ckpt.load_params(tmp_path, step=1)
    np.testing.assert_array_equal(params["w"], np.asarray(_state(1).params["w"]))


def test_save_refuses_non_finite_params(tmp_path):
    saver = ckpt.Checkpointer(tmp_path, every=1, keep=1, use_async=False)
    state = _state(1)
    state = state.replace(params={**state.params, "b": state.params["b"].at[3].set(jnp.nan)})
    with pytest.raises(VLAJaxError, match="param b is not finite; refusing to save"):
        saver.save(1, state, {})
    saver.close()
    assert not (tmp_path / "checkpoints" / "1").exists()


@pytest.mark.parametrize("every, keep", [(0, 2), (1, 0), (-1, 1)])
def test_checkpointer_refuses_every_or_keep_below_one(tmp_path, every, keep):
    with pytest.raises(VLAJaxError, match="both must be >= 1"):
        ckpt.Checkpointer(tmp_path, every=every, keep=keep)


def test_metrics_are_trimmed_to_the_resumed_step(tmp_path):
    lines = [json.dumps({"step": s, "loss": 1.0 / s}) for s in range(1, 7)] + ['{"step": 7, "lo']
    (tmp_path / ckpt.METRICS_FILE).write_text("\n".join(lines))
    assert ckpt.trim_metrics(tmp_path, 4) == 3
    steps = [json.loads(line)["step"] for line in (tmp_path / ckpt.METRICS_FILE).read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert ckpt.trim_metrics(tmp_path, 4) == 0


def test_resumed_tensorboard_log_purges_the_steps_it_rewrites(tmp_path):
    """TensorBoard's own mechanism: a SessionLog START at step start+1 hides the old run's later points."""
    import tensorflow as tf

    from vla_jax.train.loop import _Logger

    config = _tiny(("progress_bar", "false"))
    for start, steps in ((0, range(1, 7)), (4, range(5, 7))):
        logger = _Logger(config, tmp_path, start, 6)
        for step in steps:
            logger.write(step, {"loss": np.float32(step), "learning_rate": np.float32(0.1)})
        logger.close()
    purges = [
        e.step
        for f in sorted((tmp_path / "tensorboard").iterdir())
        for e in tf.compat.v1.train.summary_iterator(str(f))
        if e.HasField("session_log")
    ]
    assert purges == [5]
    steps = [json.loads(line)["step"] for line in (tmp_path / ckpt.METRICS_FILE).read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6, 5, 6]  # the logger appends; trim_metrics (run before it) dedupes
