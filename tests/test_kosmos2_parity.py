"""Flax Kosmos-2 vs Hugging Face torch, number for number, on tiny random checkpoints."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_hf import save_tiny_random_kosmos2

from vla_jax.convert.hf_checkpoint import load_hf_checkpoint
from vla_jax.convert.verify_hf import compare_with_hf, flax_outputs, hf_outputs, random_inputs
from vla_jax.models.kosmos2 import Kosmos2Backbone, Kosmos2Config, init_params, position_ids_from_tokens
from vla_jax.models.stacking import stack_layers, unstack_layers

# Two deliberately different shapes: depth, width, heads, patch size, image size, vocab, query count.
CONFIG_A = {}
CONFIG_B = dict(
    vision_hidden_size=48,
    vision_intermediate_size=40,
    vision_num_hidden_layers=3,
    vision_num_attention_heads=4,
    vision_patch_size=4,
    vision_image_size=16,
    text_embed_dim=64,
    text_ffn_dim=96,
    text_layers=3,
    text_attention_heads=4,
    text_vocab_size=300,
    latent_query_num=5,
)


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {
        "a": save_tiny_random_kosmos2(root / "a", seed=1, **CONFIG_A),
        "b": save_tiny_random_kosmos2(root / "b", seed=2, **CONFIG_B),
    }


@pytest.mark.parametrize("which,scan", [("a", True), ("b", False)])
def test_parity_with_hf(hf_dirs, which, scan):
    result = compare_with_hf(hf_dirs[which], tol=1e-4, seed=7, batch=2, scan_layers=scan)
    assert result["ok"], result
    for key in ("vision_tower", "projector", "lm_last_hidden"):
        assert 0.0 <= result[key] <= 1e-4, (key, result)


def test_parity_detects_a_wrong_weight(hf_dirs):
    """A single perturbed LayerNorm inside the decoder must show up far above the tolerance."""
    config, params = load_hf_checkpoint(hf_dirs["a"])
    ln = params["text_model"]["decoder"]["layers"]["self_attn"]["inner_attn_ln"]
    ln["scale"] = ln["scale"].copy()
    ln["scale"][1] *= 1.5  # layer 1 only: also checks the stacked layer axis is the HF layer index
    inputs = random_inputs(config, seed=0, batch=2, text_len=4)
    ours, theirs = flax_outputs(config, params, inputs), hf_outputs(hf_dirs["a"], inputs)
    assert np.max(np.abs(ours["vision_tower"] - theirs["vision_tower"])) < 1e-4
    assert np.max(np.abs(ours["lm_last_hidden"] - theirs["lm_last_hidden"])) > 1e-2


def _batch(config, seed=0):
    k = jax.random.split(jax.random.PRNGKey(seed), 2)
    s = config.latent_query_num + 6
    pixels = jax.random.normal(k[0], (2, config.vision.image_size, config.vision.image_size, 3))
    ids = jax.random.randint(k[1], (2, s), 3, config.text.vocab_size)
    img = jnp.broadcast_to((jnp.arange(s) >= 2) & (jnp.arange(s) < 2 + config.latent_query_num), (2, s))
    return pixels, ids, img


def test_scan_and_unrolled_agree():
    config = Kosmos2Config.tiny(text={"layers": 3})
    params = init_params(config, 0)
    pixels, ids, img = _batch(config)
    unrolled_params = unstack_layers(params)
    assert "layers_2" in unrolled_params["text_model"]["decoder"]

    def run(cfg, p):
        return jax.jit(Kosmos2Backbone(cfg).apply)({"params": p}, pixels, ids, img)

    with jax.default_matmul_precision("highest"):
        scanned = run(config, params)
        unrolled = run(config.replace(scan_layers=False), unrolled_params)
        remat = run(config.replace(remat=True), params)
        bf16 = run(config.replace(dtype="bfloat16"), params)  # params stay float32, compute in bf16
    assert bf16.dtype == jnp.bfloat16
    assert 1e-4 < np.max(np.abs(np.asarray(bf16, np.float32) - scanned)) < 0.1
    np.testing.assert_allclose(unrolled, scanned, atol=1e-5)
    np.testing.assert_allclose(remat, scanned, atol=1e-5)
    jax.tree_util.tree_map(np.testing.assert_array_equal, stack_layers(unrolled_params), params)


def test_backbone_seams():
    """encode_images/embed_tokens share the sqrt(D) scale; decode positions, causality, tied LM head."""
    config = Kosmos2Config.tiny()
    params = init_params(config, 3)
    pixels, ids, _ = _batch(config, 1)
    mask = jnp.ones(ids.shape, bool)
    explicit = jnp.broadcast_to(config.text.pad_token_id + 1 + jnp.arange(ids.shape[1]), ids.shape)
    bump = jax.random.normal(jax.random.PRNGKey(9), (ids.shape[0], config.text.embed_dim))

    class Probe(Kosmos2Backbone):
        """Every seam in one jitted apply (one compile keeps the test fast)."""

        def __call__(self, pixels, ids):
            emb = self.embed_tokens(ids)
            h = self.decode(emb, mask)
            return {
                "enc": self.encode_images(pixels),
                "img": self.image_to_text(pixels),
                "emb": emb,
                "h": h,
                "h_explicit": self.decode(emb, mask, positions=explicit),
                "h_off": self.decode(emb, mask, position_offset=5),
                "h_off_explicit": self.decode(emb, mask, positions=explicit + 5),
                "h_bumped": self.decode(emb.at[:, -1].add(bump), mask),
                "logits": self.lm_logits(h),
            }

    with jax.default_matmul_precision("highest"):
        out = jax.jit(Probe(config).apply)({"params": params}, pixels, ids)
    scale = np.sqrt(config.text.embed_dim)
    table = params["text_model"]["embed_tokens"]["embedding"]
    np.testing.assert_allclose(out["enc"], out["img"] * scale, rtol=1e-6)
    np.testing.assert_allclose(out["emb"], table[ids] * scale, rtol=1e-6)
    np.testing.assert_allclose(out["h_explicit"], out["h"], atol=1e-6)
    np.testing.assert_allclose(out["h_off_explicit"], out["h_off"], atol=1e-6)
    assert np.max(np.abs(out["h_off"] - out["h"])) > 1e-3
    np.testing.assert_allclose(out["logits"], np.asarray(out["h"]) @ np.asarray(table).T, atol=1e-4)
    # causal: changing the last token cannot change earlier hidden states
    np.testing.assert_allclose(out["h_bumped"][:, :-1], out["h"][:, :-1], atol=1e-6)
    assert np.max(np.abs(out["h_bumped"][:, -1] - out["h"][:, -1])) > 1e-3
    np.testing.assert_array_equal(position_ids_from_tokens(jnp.array([[5, 6, 1, 1]]), 1), [[2, 3, 1, 1]])


def test_config_round_trip_and_full_size():
    config = Kosmos2Config.tiny(latent_query_num=4, vision={"patch_size": 4})
    assert Kosmos2Config.from_hf_dict(config.to_hf_dict()) == config
    full = Kosmos2Config.full()
    assert (
        full.vision.num_hidden_layers,
        full.vision.hidden_size,
        full.text.layers,
        full.text.embed_dim,
        full.text.vocab_size,
        full.latent_query_num,
    ) == (24, 1024, 24, 2048, 65037, 64)
    shapes = jax.eval_shape(lambda: init_params(full))
    n = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes))
    assert 1.6e9 < n < 1.7e9, n  # Kosmos-2 has ~1.66B parameters
