"""Same initial state + same global batch: 3 steps on 1 device, on 8 fake devices data-parallel,
and on data=2 x fsdp=4 give the same losses and parameters (tolerance 1e-5).

In-process: tests/conftest.py gives every test process 8 fake CPU devices.
"""

import jax
import numpy as np

from data_pipelines.device import to_global_batch
from vla_jax.train import sharding
from vla_jax.train.config import load_config
from vla_jax.train.loop import build_trainer, make_data
from vla_jax.train.model import build_model


def test_one_device_vs_data_parallel_vs_fsdp():
    assert jax.device_count() == 8, jax.devices()
    # min_shard_size=0 so that every divisible leaf is really split over fsdp.
    config = load_config(
        "configs/tiny.py",
        [
            ("mesh.min_shard_size", "0"),
            ("batch_size", "8"),
            ("xla_fast_compile", "true"),
            ("model.backbone.vision.num_hidden_layers", "1"),
            ("model.backbone.text.layers", "1"),
        ],
    )
    bundle = build_model(config)
    loader = make_data(config, 0, 1)
    batches = [loader.batch_at(i) for i in range(3)]
    out, host_init = {}, None
    for name, devices, data, fsdp in [("one", jax.devices()[:1], 1, 1), ("dp8", None, 8, 1), ("dp2_fsdp4", None, 2, 4)]:
        mesh = sharding.make_mesh(data, fsdp, devices=devices)
        trainer = build_trainer(config, mesh, bundle)
        if host_init is None:  # one initial state for all three, placed into each mesh's shardings
            host_init = jax.device_get(trainer.init_state(trainer.rng))
        state = jax.device_put(host_init, trainer.state_shardings)
        init = [np.asarray(x) for x in jax.tree.leaves(state.params)]
        sharded = sum(any(ax is not None for ax in s.spec) for s in jax.tree.leaves(trainer.state_shardings.params))
        losses = []
        for batch in batches:
            state, metrics = trainer.step(state, to_global_batch(batch, mesh))
            losses.append(float(metrics["loss"]))
        final = [np.asarray(x) for x in jax.tree.leaves(state.params)]
        out[name] = {"losses": losses, "sharded_leaves": int(sharded), "leaves": init + final, "n": len(init)}

    assert out["one"]["sharded_leaves"] == 0 and out["dp8"]["sharded_leaves"] == 0
    assert out["dp2_fsdp4"]["sharded_leaves"] > 10  # FSDP really splits params and Adam moments
    ref = out["one"]["leaves"]
    assert all(loss > 0 for loss in out["one"]["losses"])
    for name in ("dp8", "dp2_fsdp4"):
        np.testing.assert_allclose(out[name]["losses"], out["one"]["losses"], rtol=1e-5, atol=1e-5)
        other = out[name]["leaves"]
        n = out["one"]["n"]
        moved = 0
        for i in range(2 * n):
            np.testing.assert_allclose(other[i], ref[i], rtol=1e-5, atol=1e-5, err_msg=f"{name} leaf {i}")
            if i >= n:
                moved += not np.array_equal(ref[i], ref[i - n])
        assert moved > n // 2  # the three steps really changed most parameters
