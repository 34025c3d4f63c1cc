"""Bit-exact resume of the RLDS (tf.data) loader: stopped at step k and resumed == the uninterrupted stream.

Both resume paths (tf.data iterator checkpoint, and replay without one) in-process, and the
trainer's path for real: 2 processes x 4 fake CPU devices (one 8-device mesh), the loader
state stored in the orbax checkpoint by `vla_jax.train.checkpoint.Checkpointer`, the
iterator files under <workdir>/data_iterators, new processes restoring both.
"""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from data_pipelines import testing as dt
from data_pipelines.loader import SHAPE_KEYS

REPO = Path(__file__).resolve().parents[1]
STEPS, STOP = 6, 3
CFG = dict(
    kind="rlds_mixture",
    mixture=[["fractal20220817_data", 1.0], ["bridge_dataset", 1.0]],
    split="train",
    window_size=2,
    action_chunk=2,
    image_size=16,
    instruction_length=12,
    shuffle_buffer=16,
    augment=True,
    max_steps_per_episode=4,
    normalization="bounds",
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("rlds")
    dt.write_fractal_rlds(str(root), lengths=(5, 7, 3, 6, 4, 8))
    dt.write_bridge_rlds(str(root), lengths=(6, 4, 5, 7))
    return str(root)


def _loader(data_dir, tmp_path, state_dir=None, batch=8):
    from data_pipelines.loader import make_loader
    from data_pipelines.tokenize import ByteTokenizer

    return make_loader(
        {**CFG, "data_dir": data_dir, "stats_cache_dir": str(tmp_path / "stats")},
        tokenizer=ByteTokenizer(),
        global_batch_size=batch,
        seed=3,
        state_dir=state_dir,
    )


def _take(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def _assert_same(a, b):
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert sorted(x) == sorted(y)
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"batch {i} key {k}")


@pytest.mark.parametrize("with_state_dir", [True, False], ids=["iterator_checkpoint", "replay"])
def test_resume_in_process_is_bit_exact(data_dir, tmp_path, with_state_dir):
    import json

    reference = _take(_loader(data_dir, tmp_path), STEPS)
    state_dir = str(tmp_path / "it") if with_state_dir else None
    first = _loader(data_dir, tmp_path, state_dir)
    head = _take(first, STOP)
    state = json.loads(json.dumps(first.get_state()))  # what the orbax checkpoint stores
    assert state["batches"] == STOP and ("iterator" in state) == with_state_dir
    resumed = _loader(data_dir, tmp_path, state_dir)
    resumed.set_state(state)
    _assert_same(head + _take(resumed, STEPS - STOP), reference)
    # a different seed's state is refused, not silently mixed in
    from data_pipelines.errors import DataError

    with pytest.raises(DataError, match="seed 3"):
        resumed.set_state({**state, "seed": 4})


DRIVER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from vla_jax.train import distributed
    distributed.initialize_from_env()
    import jax
    from jax.sharding import NamedSharding, PartitionSpec as P
    from data_pipelines.device import to_global_batch
    from vla_jax.train import checkpoint as ckpt, loop, sharding
    from vla_jax.train.config import load_config
    from vla_jax.train.state import TrainState

    mode, workdir, data_dir, stop, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    assert mode in ("run", "resume")
    mesh = sharding.make_mesh(-1, 1)
    assert mesh.devices.size == 8 and jax.process_count() == 2
    config = load_config("configs/tiny.py", [])
    config.batch_size = 16
    config.checkpoint.keep = 2
    config.data.source = "loader"
    config.data.config = dict(json.loads(sys.argv[6]), data_dir=data_dir, stats_cache_dir=workdir + "/stats")
    from data_pipelines.tokenize import ByteTokenizer
    loop.load_tokenizer = lambda path: ByteTokenizer()  # the trainer's loader factory, without a tokenizer dir
    config.model.action_dim = 7  # the data's shapes derive from the model (train.model.data_shapes)
    config.data.tokenizer = "byte"
    loader = loop.make_data(config, jax.process_index(), jax.process_count(),
                            state_dir=workdir + "/" + loop.DATA_ITERATORS_DIR)
    rep = NamedSharding(mesh, P())
    glob = lambda x: jax.make_array_from_callback(x.shape, rep, lambda idx: x[idx])
    state = TrainState(step=glob(np.zeros((), np.int32)), params={"w": glob(np.arange(4.0, dtype=np.float32))},
                       opt_state={"m": glob(np.ones(4, np.float32))}, rng=glob(np.zeros(2, np.uint32)))
    checkpointer = ckpt.Checkpointer(workdir, every=1, keep=2, use_async=False)
    start = 0
    if mode == "resume":
        start = checkpointer.latest_step()
        abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=rep), state)
        state, data_state = checkpointer.restore(start, abstract)
        loader.set_state(data_state)
    it, batches = iter(loader), []
    for step in range(start, steps):
        host = next(it)
        batch = to_global_batch(host, mesh)
        assert batch["image"].shape[0] == 16 and len(batch["image"].sharding.device_set) == 8
        batches.append(host)
        if mode == "run" and step + 1 <= stop:  # saves up to `stop` (orbax and iterator files keep the newest 2);
            checkpointer.save(step + 1, state, loader.get_state())  # the run goes on: the uninterrupted stream
    checkpointer.wait()
    checkpointer.close()
    np.savez(f"{workdir}/{mode}_p{jax.process_index()}.npz",
             **{f"{i}/{k}": v for i, b in enumerate(batches) for k, v in b.items()})
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _run_two_processes(mode, workdir, data_dir):
    import json

    port = _free_port()
    procs = []
    for i in range(2):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VLA_JAX_", "JAX_COORDINATOR", "JAX_PROCESS"))}
        env.update(
            JAX_PLATFORMS="cpu",
            XLA_FLAGS="--xla_force_host_platform_device_count=4",
            TF_CPP_MIN_LOG_LEVEL="3",
            VLA_JAX_COORDINATOR=f"localhost:{port}",
            VLA_JAX_PROCESS_ID=str(i),
            VLA_JAX_NUM_PROCESSES="2",
        )
        cfg = {k: v for k, v in CFG.items() if k not in SHAPE_KEYS}  # the trainer derives them from the model
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", DRIVER, mode, str(workdir), data_dir, str(STOP), str(STEPS), json.dumps(cfg)],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outputs = [p.communicate(timeout=400) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]


def _batches(path):
    with np.load(path, allow_pickle=True) as f:
        n = 1 + max(int(k.split("/")[0]) for k in f.files)
        return [{k.split("/", 1)[1]: f[k] for k in f.files if k.startswith(f"{i}/")} for i in range(n)]


def test_two_processes_eight_devices_stop_and_resume_equals_uninterrupted(data_dir, tmp_path):
    """Run 1 checkpoints at steps 1..3 and goes on to step 6 (the uninterrupted stream, saving does not
    perturb it); run 2 starts fresh processes, restores step 3 and must yield run 1's batches 4..6."""
    _run_two_processes("run", tmp_path, data_dir)
    iterators = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "data_iterators").glob("process_*/*.index"))
    assert iterators == [f"data_iterators/process_{p}/batches_{b}.index" for p in range(2) for b in (2, 3)]
    _run_two_processes("resume", tmp_path, data_dir)
    for p in range(2):
        ref = _batches(tmp_path / f"run_p{p}.npz")
        resumed = _batches(tmp_path / f"resume_p{p}.npz")
        assert len(ref) == STEPS and len(resumed) == STEPS - STOP
        _assert_same(resumed, ref[STOP:])
    hosts = [_batches(tmp_path / f"run_p{p}.npz")[0]["image"] for p in range(2)]
    assert not np.array_equal(*hosts)  # the two hosts read different episodes
