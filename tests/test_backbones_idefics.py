"""IDEFICS (Flamingo) equals Hugging Face's torch model stage by stage, and what makes it match is really there:
the gated cross-attention layers, the media masking (text before the first image reads none; each token the
latest image), the decoupled embedding and head; `--num-layers` keeps whole cross-attention groups; inside the
interleaved structure a frame's action reads its own image and never a later one."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_hf import save_tiny_random

from vla_jax.convert.hf_checkpoint import load_hf_checkpoint
from vla_jax.convert.verify_hf import STAGES, compare_with_hf, flax_outputs, hf_outputs, random_inputs
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.idefics_config import IdeficsConfig
from vla_jax.train.step import FAST_COMPILE_OPTIONS
from vla_jax.vla import VLAConfig, VLAPolicy, init_policy

# A: the tiny default (resampler, 2 groups of 2 blocks, 2 additional ids). B: per-head q/k RMSNorms in the cross
# layers and LayerNorms in the resampler, vector gates, a cross layer before every block, tied decoupled head.
# C: no resampler (the media are the tower's 1 + 16 tokens), no additional vocabulary, 3 blocks per group.
CASES = {
    "a": dict(),
    "b": dict(
        qk_layer_norms=True,
        perceiver_qk_layer_norms_perceiver=True,
        alpha_type="vector",
        cross_layer_interval=1,
        num_hidden_layers=3,
        tie_word_embeddings=True,
        perceiver_resampler_n_latents=3,
    ),
    "c": dict(use_resampler=False, additional_vocab_size=0, num_hidden_layers=3, cross_layer_interval=3),
}


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf_idefics")
    return {name: save_tiny_random("idefics", root / name, seed=3, **kw) for name, kw in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_idefics_parity_with_hf(hf, name):
    result = compare_with_hf(hf[name], seed=11, batch=2, text_len=6, fast_compile=True)
    assert result["ok"] and result["model_type"] == "idefics", result
    assert all(0.0 <= result[k] <= 1e-4 for k in STAGES), result


def test_cross_attention_gates_and_media_mask_are_what_make_it_match(hf):
    """Every slot reading the image (no gate before the first image), or no slot reading it: the LM misses HF."""
    config, params = load_hf_checkpoint(hf["a"])
    inputs = random_inputs(config, seed=0, batch=2, text_len=6)
    theirs = hf_outputs(hf["a"], inputs, config=config)["lm_last_hidden"]

    def miss(media_index):
        ours = flax_outputs(config, params, {**inputs, "media_index": media_index}, fast_compile=True)
        return float(np.abs(ours["lm_last_hidden"] - theirs).max())

    index = inputs["media_index"]
    assert (index[:, :2] == -1).all() and (index[:, 2:] == 0).all()  # <s> and one text token precede <image>
    assert miss(index) < 1e-4
    assert miss(np.zeros_like(index)) > 1e-3
    assert miss(np.full_like(index, -1)) > 1e-3


def test_two_images_per_row_each_token_reads_the_latest_and_logits_match(hf):
    """HF with two images per row and the processor's one-hot `image_attention_mask`, and its decoupled LM head
    (regular + additional columns) on the same hidden states."""
    import torch
    import transformers

    config, params = load_hf_checkpoint(hf["a"])
    model = transformers.IdeficsForVisionText2Text.from_pretrained(hf["a"], dtype=torch.float32).eval()
    rng = np.random.default_rng(0)
    b, s, size = 2, 9, config.image_size
    pixels = rng.standard_normal((b, 2, 3, size, size)).astype(np.float32)
    ids = rng.integers(3, config.vocab_size - 1, (b, s))
    ids[:, [1, 5]] = config.image_token_id
    media_index = np.asarray([[-1, 0, 0, 0, 0, 1, 1, 1, 1]] * b)
    attn = np.ones((b, s), bool)
    attn[1, -2:] = False
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(attn).long(),
            position_ids=torch.arange(s)[None].expand(b, s),
            pixel_values=torch.from_numpy(pixels),
            image_attention_mask=torch.from_numpy(media_index[..., None] == np.arange(2)).long(),
            output_hidden_states=True,
        )
    mdl = backbone_lib.build(config)

    def ours(m, px, ids, mask, index):
        media = m.encode_images(px.reshape(-1, *px.shape[2:])).reshape(px.shape[0], 2, config.image_tokens, -1)
        hidden = m.decode(m.embed_tokens(ids), mask, media=media, media_index=index)
        return m.lm_logits(hidden)

    with jax.default_matmul_precision("highest"):
        run = jax.jit(lambda p, *a: mdl.apply({"params": p}, *a, method=ours), compiler_options=FAST_COMPILE_OPTIONS)
        logits = run(params, jnp.asarray(pixels.transpose(0, 1, 3, 4, 2)), ids, attn, media_index)
    assert logits.shape == (b, s, config.text.vocab_size + config.additional_vocab_size)
    assert float(np.abs(np.asarray(logits) - out.logits.numpy()).max()) < 1e-4


def test_num_layers_keeps_whole_cross_attention_groups(hf):
    """HF cannot build fewer LM blocks than cross_layer_interval: --num-layers 1 keeps one group (2 blocks)."""
    config, _ = load_hf_checkpoint(hf["a"], num_layers=1)
    assert (config.vision.num_hidden_layers, config.text.num_hidden_layers, config.num_cross_layers) == (1, 2, 1)
    result = compare_with_hf(hf["a"], num_layers=1, seed=1, fast_compile=True)
    assert result["ok"] and result["num_layers"] == 1, result
    assert IdeficsConfig.full().truncated(2).text.num_hidden_layers == 4


def test_config_round_trips_and_refuses_what_hf_cannot_build():
    import transformers

    config = IdeficsConfig.tiny(qk_layer_norms=True, alpha_type="vector")
    parsed = transformers.AutoConfig.for_model(**config.to_hf_dict()).to_dict()
    assert IdeficsConfig.from_hf_dict(parsed) == config
    assert config.image_token_id == 1025 and config.image_tokens == 4
    with pytest.raises(Exception, match="multiple of cross_layer_interval"):
        IdeficsConfig.tiny(cross_layer_interval=3)


def test_interleaved_frame_reads_its_own_image_never_a_later_one():
    cfg = VLAConfig(
        backbone=IdeficsConfig.tiny(
            vision={"num_hidden_layers": 1, "image_size": 16}, text={"num_hidden_layers": 1}, cross_layer_interval=1
        ),
        structure="interleaved",
        head="mlp",
        window_size=2,
        action_chunk=1,
        action_dim=2,
        has_gripper=False,
        head_hidden_size=8,
        head_layers=1,
    )
    params = init_policy(cfg, 0, compiler_options=FAST_COMPILE_OPTIONS)
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.integers(0, 256, (1, 2, 16, 16, 3), dtype=np.uint8),
        "tokens": np.asarray([[1, 5, 6]], np.int32),
        "token_mask": np.ones((1, 3), bool),
    }
    run = jax.jit(
        lambda p, b: VLAPolicy(cfg).apply({"params": p}, b, method="interleaved_features"),
        compiler_options=FAST_COMPILE_OPTIONS,
    )
    base = run(params, batch)
    for frame in (0, 1):
        moved = {**batch, "image": batch["image"].copy()}
        moved["image"][:, frame] = 255 - moved["image"][:, frame]
        out = run(params, moved)
        assert float(jnp.abs(out[0, frame] - base[0, frame]).max()) > 1e-4  # reads its own image
        if frame == 1:
            np.testing.assert_allclose(out[0, 0], base[0, 0], atol=1e-6)  # never a later one
