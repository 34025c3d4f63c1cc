"""Freezing, LoRA, gradient accumulation, decay mask, FSDP rules, config overrides, env detection."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from data_pipelines.device import to_global_batch
from data_pipelines.synthetic import SyntheticLoader
from vla_jax import cli
from vla_jax.errors import VLAJaxError
from vla_jax.train import distributed, sharding
from vla_jax.train.config import load_config
from vla_jax.train.loop import build_trainer
from vla_jax.train.model import ModelBundle, build_model, example_batch
from vla_jax.train.optimizer import decay_mask, trainable_mask

SMALL = [
    ("model.backbone.vision.num_hidden_layers", "1"),
    ("model.backbone.text.layers", "1"),
    ("model.head", "mlp"),
    ("model.window_size", "1"),
    ("model.action_chunk", "1"),
    ("batch_size", "4"),
    ("optimizer.warmup_steps", "0"),
    ("optimizer.learning_rate", "0.01"),
    ("xla_fast_compile", "true"),
]


def _flat(tree):
    return {"/".join(map(str, k)): np.asarray(v) for k, v in traverse_util.flatten_dict(tree).items()}


def _abstract_policy_params(config):
    bundle = build_model(config)
    return jax.eval_shape(lambda r: bundle.module.init(r, example_batch(config))["params"], jax.random.key(0))


def _run(config, bundle, batches):
    mesh = sharding.make_mesh(1, 1, devices=jax.devices()[:1])
    trainer = build_trainer(config, mesh, bundle)
    state = trainer.init_state(trainer.rng)
    init = jax.device_get(state.params)
    losses = []
    for batch in batches:
        state, metrics = trainer.step(state, to_global_batch(batch, mesh))
        losses.append(float(metrics["loss"]))
    return trainer, init, state, losses


def test_freeze_flags_follow_robovlms_order_on_the_real_policy():
    config = load_config("configs/tiny.py", SMALL)
    params = _abstract_policy_params(config)
    config.freeze.freeze_backbone, config.freeze.train_vision, config.freeze.train_text_embedding = True, True, False
    mask = _flat(trainable_mask(params, config.freeze))
    assert all(v for k, v in mask.items() if k.startswith("backbone/vision_model/"))
    assert not any(v for k, v in mask.items() if k.startswith("backbone/text_model/"))
    assert not any(v for k, v in mask.items() if k.startswith("backbone/image_to_text_projection/"))
    assert all(v for k, v in mask.items() if k.startswith("head/"))
    config.freeze.train_vision, config.freeze.train_text_embedding = False, True
    mask = _flat(trainable_mask(params, config.freeze))
    assert mask["backbone/text_model/embed_tokens/embedding"] and not any(
        v for k, v in mask.items() if k.startswith("backbone/vision_model/")
    )
    config.freeze.vision_pattern = "^nothing/"
    with pytest.raises(VLAJaxError, match="train_vision"):
        trainable_mask(params, config.freeze)
    decay = _flat(decay_mask(params))
    kernels = [v for k, v in decay.items() if k.endswith(("q_proj/kernel", "fc1/kernel"))]
    assert kernels and all(kernels)
    assert not any(v for k, v in decay.items() if k.endswith(("bias", "scale", "embedding")))


def test_lora_trains_only_adapters_and_frozen_params_do_not_change():
    config = load_config(
        "configs/tiny.py",
        SMALL
        + [
            ("lora.enabled", "true"),
            ("lora.rank", "4"),
            ("lora.dropout", "0.1"),
            ("freeze.freeze_backbone", "true"),
            ("freeze.train_vision", "false"),
            ("freeze.train_text_embedding", "false"),
        ],
    )
    loader = SyntheticLoader(
        global_batch_size=4,
        image_size=32,
        window_size=1,
        action_chunk=1,
        action_dim=2,
        instruction_length=config.data.instruction_length,
        vocab_size=1024,
    )
    trainer, init, state, losses = _run(config, build_model(config), [loader.batch_at(i) for i in range(3)])
    before, after = _flat(init), _flat(jax.device_get(state.params))
    lora_keys = [k for k in before if k.startswith("lora/")]
    # q/k/v/out and fc1/fc2 of the (scan-stacked) text decoder, two factors each
    assert len(lora_keys) == 12 and all("text_model" in k for k in lora_keys)
    for key in before:
        if key.startswith("base/backbone/"):
            np.testing.assert_array_equal(after[key], before[key], err_msg=key)  # frozen: bit-identical
        else:
            assert not np.array_equal(after[key], before[key]), f"{key} did not train"
    # No Adam moments are allocated for frozen leaves.
    moments = sum(x.size for x in jax.tree.leaves(state.opt_state))
    trainable = sum(v.size for k, v in before.items() if not k.startswith("base/backbone/"))
    assert moments < 3 * trainable
    assert np.isfinite(losses).all()


class _StandIn(nn.Module):
    """A few-parameter policy with the backbone/head naming, for optimizer-semantics tests."""

    @nn.compact
    def __call__(self, batch, deterministic=True):
        b, t = batch["image"].shape[:2]
        pixels = batch["image"].astype(jnp.float32).mean(axis=(2, 3)) / 255.0  # [B, T, 3]
        words = nn.Embed(16, 4, name="embed_tokens")(batch["tokens"] % 16).mean(axis=1)  # [B, 4]
        h = jnp.tanh(nn.Dense(8, name="vision")(pixels) + nn.Dense(8, name="text")(words)[:, None])
        c, a = batch["action"].shape[2:]
        return {"action": nn.Dense(c * a, name="head")(h).reshape(b, t, c, a)}


def _mse(outputs, batch):
    loss = jnp.mean((outputs["action"] - batch["action"]) ** 2)
    return loss, {}


def test_grad_accumulation_over_4_micro_batches_equals_one_4x_batch():
    patterns = [
        ("freeze.backbone_pattern", "^(vision|text|embed_tokens)/"),
        ("freeze.vision_pattern", "^vision/"),
        ("freeze.text_embedding_pattern", "^embed_tokens/"),
        ("optimizer.warmup_steps", "0"),
        ("optimizer.learning_rate", "0.05"),
        ("optimizer.grad_clip", "0.5"),
        ("optimizer.weight_decay", "0.1"),
        ("xla_fast_compile", "true"),
    ]
    bundle = ModelBundle(_StandIn(), _mse)
    big = load_config("configs/tiny.py", patterns + [("batch_size", "8")])
    micro = load_config("configs/tiny.py", patterns + [("batch_size", "2"), ("optimizer.grad_accum_steps", "4")])
    loader = SyntheticLoader(
        global_batch_size=8, image_size=32, window_size=2, action_chunk=2, action_dim=2, vocab_size=64
    )
    big_batches = [loader.batch_at(i) for i in range(2)]
    micro_batches = [{k: v[j : j + 2] for k, v in b.items()} for b in big_batches for j in range(0, 8, 2)]
    _, init_a, big_state, _ = _run(big, bundle, big_batches)
    _, init_b, micro_state, _ = _run(micro, bundle, micro_batches)
    for (key, a), b in zip(_flat(init_a).items(), _flat(init_b).values()):
        np.testing.assert_array_equal(a, b, err_msg=key)
    moved = 0
    for (key, a), b, start in zip(
        _flat(jax.device_get(big_state.params)).items(),
        _flat(jax.device_get(micro_state.params)).values(),
        _flat(init_a).values(),
    ):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=key)
        moved += not np.allclose(a, start)
    assert moved == len(_flat(init_a))
    assert int(micro_state.step) == 8 and int(big_state.step) == 2


def test_fsdp_rule_shards_largest_divisible_axis_above_threshold():
    assert sharding.leaf_spec((2, 32, 64), 4, 100) == jax.sharding.PartitionSpec(None, None, "fsdp")
    assert sharding.leaf_spec((2, 64, 30), 4, 100) == jax.sharding.PartitionSpec(None, "fsdp", None)
    assert sharding.leaf_spec((3, 5), 4, 0) == jax.sharding.PartitionSpec()  # indivisible
    assert sharding.leaf_spec((64, 64), 4, 10**6) == jax.sharding.PartitionSpec()  # too small
    assert sharding.leaf_spec((64, 64), 1, 0) == jax.sharding.PartitionSpec()  # replicated data parallel
    with pytest.raises(VLAJaxError, match="fsdp=3"):
        sharding.make_mesh(-1, 3, devices=[object()] * 8)


def test_config_overrides_are_typed_and_unknown_keys_list_close_ones(tmp_path, capsys):
    config = load_config(
        "configs/tiny.py",
        [("lora.enabled", "true"), ("optimizer.learning_rate", "3e-4"), ("mesh.fsdp", "4"), ("init_from", "/x")],
    )
    assert config.lora.enabled is True and config.optimizer.learning_rate == 3e-4 and config.mesh.fsdp == 4
    with pytest.raises(VLAJaxError, match="expected a int"):
        load_config("configs/tiny.py", [("num_steps", "1e3")])
    code = cli.main(
        [
            "train",
            "--config",
            "configs/tiny.py",
            "--workdir",
            str(tmp_path / "w"),
            "--config.optimizer.learnig_rate=1e-3",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "unknown config key 'optimizer.learnig_rate'" in err
    assert "optimizer.learning_rate" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w").exists()  # nothing written for a bad command line


def test_distributed_detection_from_environment():
    assert distributed.detect({}).mode == "single"
    env = {"VLA_JAX_COORDINATOR": "10.0.0.2:1234", "VLA_JAX_PROCESS_ID": "3", "VLA_JAX_NUM_PROCESSES": "4"}
    got = distributed.detect(env)
    assert (got.mode, got.coordinator, got.process_id, got.num_processes) == ("explicit", "10.0.0.2:1234", 3, 4)
    with pytest.raises(VLAJaxError, match="VLA_JAX_NUM_PROCESSES"):
        distributed.detect({"VLA_JAX_COORDINATOR": "h:1", "VLA_JAX_PROCESS_ID": "0"})
    with pytest.raises(VLAJaxError, match="must be in"):
        distributed.detect({**env, "VLA_JAX_PROCESS_ID": "4"})
    std = distributed.detect({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_PROCESS_ID": "1", "JAX_NUM_PROCESSES": "2"})
    assert std.mode == "jax_env" and std.process_id == 1
    assert distributed.detect({"TPU_WORKER_HOSTNAMES": "a,b,c,d"}).mode == "tpu"
    assert distributed.detect({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "16"}).mode == "slurm"
