"""The four structures on a tiny Kosmos-2: shapes, gradients, masks, overfitting, scan vs unrolled."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vla_jax.errors import VLAJaxError
from vla_jax.losses import vla_loss
from vla_jax.models import kosmos2
from vla_jax.models.kosmos2 import Kosmos2Config
from vla_jax.models.stacking import unstack_layers
from vla_jax.train.step import FAST_COMPILE_OPTIONS as FAST_COMPILE
from vla_jax.vla import VLAConfig, VLAPolicy, init_policy

B, T, C, L = 2, 3, 2, 6
BACKBONE = Kosmos2Config.tiny(
    vision=dict(num_hidden_layers=1, hidden_size=32, image_size=32, patch_size=16),
    text=dict(layers=1, embed_dim=32, vocab_size=320),
    latent_query_num=4,
)

COMBOS = [
    ("one_step_continuous", "mlp"),
    ("one_step_discrete", "discrete"),
    ("interleaved", "mlp"),
    ("policy_head", "lstm"),
    ("policy_head", "gpt"),
    ("policy_head", "mlp"),
]


def make_config(structure, head, **kw):
    base = dict(
        backbone=BACKBONE,
        structure=structure,
        head=head,
        window_size=T,
        action_chunk=C,
        action_dim=3,
        has_gripper=True,
        head_hidden_size=32,
        head_layers=1,
        head_heads=2,
        num_bins=32,
    )
    base.update(kw)
    return VLAConfig(**base)


def make_batch(action_dim=3, seed=0, has_gripper=True):
    """docs/design.md keys built by hand; sample 1 starts one frame into the window and has padded text."""
    rng = np.random.default_rng(seed)
    action = rng.uniform(-0.9, 0.9, (B, T, C, action_dim)).astype(np.float32)
    if has_gripper:
        action[..., -1] = rng.integers(0, 2, (B, T, C))
    token_mask = np.ones((B, L), bool)
    token_mask[1, 4:] = False
    image_mask = np.ones((B, T), bool)
    image_mask[1, 0] = False
    action_mask = np.ones((B, T, C), bool)
    action_mask[1, 0] = False
    return {
        "image": rng.integers(0, 256, (B, T, 32, 32, 3), dtype=np.uint8),
        "image_mask": image_mask,
        "tokens": rng.integers(3, 200, (B, L)).astype(np.int32),
        "token_mask": token_mask,
        "action": action,
        "action_mask": action_mask,
        "action_dim_mask": np.ones((B, action_dim), bool),
        "dataset_id": np.zeros((B,), np.int32),
    }


# Tests compile ~10 tiny graphs and run each a few times: cheaper XLA optimisation halves compile time.


def jit(fn):
    return jax.jit(fn, compiler_options=FAST_COMPILE)


@functools.cache
def _backbone_params():
    """One backbone init shared by every test (the policy's own init would retrace it each time)."""
    return jit(lambda: kosmos2.init_params(BACKBONE, 0))()


def init(cfg, seed=0):
    return init_policy(cfg, seed, backbone_params=_backbone_params(), compiler_options=FAST_COMPILE)


def _apply_fn(cfg):
    return jit(lambda p, b: VLAPolicy(cfg).apply({"params": p}, b))


@pytest.mark.parametrize("structure,head", COMBOS)
def test_structure_jits_shapes_grads_and_masked_frames(structure, head):
    cfg = make_config(structure, head)
    batch = make_batch()
    params = init(cfg)

    @jit
    def loss_and_grad(p, b):
        def f(p):
            out = VLAPolicy(cfg).apply({"params": p}, b)
            return vla_loss(cfg, out, b)[0], out

        return jax.value_and_grad(f, has_aux=True)(p)

    (loss, out), grads = loss_and_grad(params, batch)
    assert out["action"].shape == (B, T, C, 3)
    assert out["gripper_logits"].shape == (B, T, C)
    if structure == "one_step_discrete":
        assert out["action_logits"].shape == (B, T, C, 3, 32)
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))
    # The gradient reaches the vision tower: the whole model trains.
    assert float(jnp.abs(grads["backbone"]["vision_model"]["patch_embedding"]["kernel"]).max()) > 0
    np.testing.assert_array_equal(np.asarray(out["action"][1, 0]), 0.0)  # step before the episode start

    # The invalid frame and the padded text influence nothing (loss included) ...
    changed = {k: v.copy() for k, v in batch.items()}
    changed["image"][1, 0] = 255 - changed["image"][1, 0]
    changed["tokens"][1, 4:] = 7
    (loss2, out2), _ = loss_and_grad(params, changed)
    np.testing.assert_allclose(out2["action"], out["action"], atol=1e-5)
    np.testing.assert_allclose(float(loss2), float(loss), rtol=1e-5)
    # ... while a valid frame does (so the check above can fail).
    moved = {k: v.copy() for k, v in batch.items()}
    moved["image"][1, 1] = 255 - moved["image"][1, 1]
    (_, out3), _ = loss_and_grad(params, moved)
    assert float(jnp.abs(out3["action"][1, 1:] - out["action"][1, 1:]).max()) > 1e-6


def test_discrete_greedy_decode_matches_teacher_forcing_on_its_own_tokens():
    cfg = make_config("one_step_discrete", "discrete")
    batch = make_batch()
    params = init(cfg)
    apply = _apply_fn(cfg)
    no_action = {k: v for k, v in batch.items() if k != "action"}
    greedy = apply(params, no_action)
    forced = apply(params, {**batch, "action": np.asarray(greedy["action"])})
    np.testing.assert_allclose(forced["action_logits"], greedy["action_logits"], atol=1e-4)
    np.testing.assert_array_equal(np.asarray(forced["action"]), np.asarray(greedy["action"]))
    # The decoded actions are bin centres: tokens round-trip exactly.
    tok = cfg.action_tokenizer
    valid = batch["image_mask"]  # invalid steps are zeroed, logits included
    np.testing.assert_array_equal(
        tok.to_bins(np.asarray(greedy["action"]))[valid], np.argmax(greedy["action_logits"], -1)[valid]
    )


def test_parallel_discrete_decoding_is_one_causal_pass_over_the_queries_and_trains():
    cfg = make_config("one_step_discrete", "discrete", discrete_decoding="parallel")
    batch = make_batch()
    params = init(cfg)
    ca = C * 3
    assert params["action_queries"].shape == (ca, BACKBONE.hidden_size) and "action_token" not in params
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(
        jax.eval_shape(lambda: VLAPolicy(cfg).init(jax.random.key(0), batch)["params"])
    )  # the fast init (backbone_params=...) builds the same tree as the full one
    queries = np.random.default_rng(1).normal(0, 0.5, (ca, BACKBONE.hidden_size)).astype(np.float32)
    params = {**params, "action_queries": queries}
    apply = _apply_fn(cfg)
    out = apply(params, batch)
    # The targets are never an input: the same logits with and without them (no teacher forcing).
    no_action = {k: v for k, v in batch.items() if k != "action"}
    np.testing.assert_array_equal(apply(params, no_action)["action_logits"], out["action_logits"])
    valid = batch["image_mask"]
    # Causal over the query slots: moving query j changes tokens >= j and none before it.
    j = 3
    moved = queries.copy()
    moved[j] = np.random.default_rng(2).normal(0, 0.5, moved.shape[1])  # not a constant shift: LayerNorm removes one
    ref = np.asarray(out["action_logits"])[valid].reshape(-1, ca, 32)
    got = np.asarray(apply({**params, "action_queries": moved}, batch)["action_logits"])[valid].reshape(-1, ca, 32)
    np.testing.assert_allclose(got[:, :j], ref[:, :j], atol=1e-6)
    assert np.abs(got[:, j] - ref[:, j]).max(axis=-1).min() > 1e-4
    # It learns: cross-entropy on one batch falls 3x in 40 Adam steps (action_queries included).
    losses, grads = _adam_fit(cfg, batch, params, 40)
    assert float(jnp.abs(grads["action_queries"]).max()) > 0
    assert losses[-1] < losses[0] / 3, (losses[0], losses[-1])


def test_scan_and_unrolled_backbone_and_padding_length_give_the_same_policy():
    cfg = make_config("interleaved", "mlp")
    batch = make_batch()
    params = init(cfg)
    unrolled_cfg = cfg.replace(backbone=BACKBONE.replace(scan_layers=False))
    unrolled = unstack_layers(params)
    assert jax.tree_util.tree_structure(unrolled) == jax.tree_util.tree_structure(
        jax.eval_shape(lambda: VLAPolicy(unrolled_cfg).init(jax.random.key(0), batch)["params"])
    )
    ref = _apply_fn(cfg)(params, batch)["action"]
    np.testing.assert_allclose(_apply_fn(unrolled_cfg)(unrolled, batch)["action"], ref, atol=1e-5)
    # More padding (a longer L) gives the same result: padding is packed away, positions unchanged.
    longer = dict(batch)
    longer["tokens"] = np.concatenate([batch["tokens"], np.full((B, 3), 9, np.int32)], 1)
    longer["token_mask"] = np.concatenate([batch["token_mask"], np.zeros((B, 3), bool)], 1)
    np.testing.assert_allclose(_apply_fn(unrolled_cfg)(unrolled, longer)["action"], ref, atol=1e-5)


def test_tiny_policy_overfits_one_batch():
    """2-D mobile action space, no gripper, MSE: the loss must fall at least 10x on one batch."""
    cfg = make_config("policy_head", "lstm", action_dim=2, has_gripper=False, loss_type="mse")
    batch = make_batch(action_dim=2, has_gripper=False)
    losses, _ = _adam_fit(cfg, batch, init(cfg), 50)
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


def _adam_fit(cfg, batch, params, steps):
    """`steps` Adam (lr 1e-2) steps on one batch -> (the losses, the first step's gradients)."""
    opt = optax.adam(1e-2)
    state = opt.init(params)

    @jit
    def step(p, s):
        loss, g = jax.value_and_grad(lambda p: vla_loss(cfg, VLAPolicy(cfg).apply({"params": p}, batch), batch)[0])(p)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss, g

    losses, first = [], None
    for _ in range(steps):
        params, state, loss, grads = step(params, state)
        losses.append(float(loss))
        first = grads if first is None else first
    return losses, first


def test_config_validation_and_round_trip():
    with pytest.raises(VLAJaxError, match="one_step_discrete"):
        make_config("policy_head", "discrete")
    with pytest.raises(VLAJaxError, match="structure"):
        make_config("two_step", "mlp")
    with pytest.raises(VLAJaxError, match="num_bins"):
        make_config("one_step_discrete", "discrete", num_bins=4096)
    with pytest.raises(VLAJaxError, match="discrete_decoding='parallel' decodes action tokens"):
        make_config("policy_head", "lstm", discrete_decoding="parallel")
    with pytest.raises(VLAJaxError, match="discrete_decoding='beam' is unknown"):
        make_config("one_step_discrete", "discrete", discrete_decoding="beam")
    with pytest.raises(VLAJaxError, match="unknown keys"):
        VLAConfig.from_dict({"structure": "policy_head", "hed": "lstm"})
    cfg = make_config("policy_head", "gpt", image_bracket_tokens=(300, 301), mu_law=50.0)
    back = VLAConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
