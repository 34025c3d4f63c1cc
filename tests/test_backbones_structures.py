"""Every new backbone x every structure x head: builds, jits, right shapes, finite gradients that reach the vision
tower (Kosmos-2's own grid is tests/test_vla.py); PaliGemma's prefix-LM inside the structures; released sizes:
parameter counts from `jax.eval_shape` equal Hugging Face's (counted on the meta device)."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vla_jax.losses import vla_loss
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.clip_kosmos2 import ClipKosmos2Config
from vla_jax.models.idefics_config import IdeficsConfig
from vla_jax.models.kosmos2 import Kosmos2Config
from vla_jax.models.llava import LlavaConfig
from vla_jax.models.paligemma import PaliGemmaConfig
from vla_jax.models.qwen2_5_vl import Qwen2_5_VLConfig
from vla_jax.models.smolvlm import SmolVLMConfig
from vla_jax.train.step import FAST_COMPILE_OPTIONS as FAST_COMPILE
from vla_jax.vla import VLAConfig, VLAPolicy, image_preprocessing, init_policy, normalize_images
from vla_runtime.policy_io import CLIP_MEAN, CLIP_STD, SIGLIP_MEAN, SIGLIP_STD

B, T, C, A, L = 2, 2, 2, 3, 5
ONE_LAYER = {"num_hidden_layers": 1}
BACKBONES = {
    "paligemma": PaliGemmaConfig.tiny(
        vision={**ONE_LAYER, "image_size": 16}, text={**ONE_LAYER, "vocab_size": 320, "sliding_window": 4}
    ),
    "smolvlm": SmolVLMConfig.tiny(vision={**ONE_LAYER, "image_size": 16}, text={**ONE_LAYER, "vocab_size": 320}),
    # 2 vision layers: feature layer -2 runs one, the other is the unused tail
    "llava": LlavaConfig.tiny(vision={"num_hidden_layers": 2, "image_size": 16}, text={**ONE_LAYER, "vocab_size": 320}),
    "clip-kosmos-2": ClipKosmos2Config.tiny(
        vision={**ONE_LAYER, "image_size": 16}, latent_query_num=3, text={"layers": 1, "vocab_size": 320}
    ),
    # 56 px: 2 x 2 image tokens with 3-D positions, one window per merge unit, the one block full attention
    "qwen2_5_vl": Qwen2_5_VLConfig.tiny(
        vision={**ONE_LAYER, "fullatt_block_indexes": (0,)}, text={**ONE_LAYER, "vocab_size": 320}
    ),
    # Flamingo: one cross-attention group of one LM block; the images reach the LM only by cross-attention
    "idefics": IdeficsConfig.tiny(
        vision={**ONE_LAYER, "image_size": 16},
        text={**ONE_LAYER, "vocab_size": 320},
        cross_layer_interval=1,
        perceiver={"resampler_depth": 1},
    ),
}
PATCH_KERNEL = {"qwen2_5_vl": ("vision_model", "patch_embed")}  # the others: vision_model/patch_embedding/kernel
STRUCTURES = [("one_step_continuous", "mlp"), ("one_step_discrete", "discrete"), ("interleaved", "mlp")]
# Every backbone runs every structure: each builds its sequence differently (one per frame, a discrete action tail,
# one interleaved sequence). policy_head shares one_step_continuous's per-frame path and only adds a head that fuses
# the [B, T, D] features, so each policy-head head runs on one backbone (the shipped policy_head + LSTM of every
# family also trains end to end in tests/test_backbones_train.py).
POLICY_HEADS = [
    ("clip-kosmos-2", "policy_head", "lstm"),
    ("paligemma", "policy_head", "gpt"),
    ("smolvlm", "policy_head", "mlp"),
]
CASES = [(name, s, h) for name in sorted(BACKBONES) for s, h in STRUCTURES] + POLICY_HEADS


def jit(fn):
    return jax.jit(fn, compiler_options=FAST_COMPILE)


@functools.cache
def _backbone_params(name):
    return jax.device_get(backbone_lib.init_params(BACKBONES[name], 0, compiler_options=FAST_COMPILE))


def make_config(name, structure, head, **kw):
    base = dict(
        backbone=BACKBONES[name],
        structure=structure,
        head=head,
        window_size=T,
        action_chunk=C,
        action_dim=A,
        has_gripper=True,
        head_hidden_size=16,
        head_layers=1,
        head_heads=2,
        num_bins=16,
    )
    return VLAConfig(**{**base, **kw})


def make_batch(size, seed=0):
    rng = np.random.default_rng(seed)
    action = rng.uniform(-0.9, 0.9, (B, T, C, A)).astype(np.float32)
    action[..., -1] = rng.integers(0, 2, (B, T, C))
    token_mask = np.ones((B, L), bool)
    token_mask[1, 3:] = False
    image_mask = np.ones((B, T), bool)
    image_mask[1, 0] = False
    return {
        "image": rng.integers(0, 256, (B, T, size, size, 3), dtype=np.uint8),
        "image_mask": image_mask,
        "tokens": rng.integers(3, 250, (B, L)).astype(np.int32),
        "token_mask": token_mask,
        "action": action,
        "action_mask": np.ones((B, T, C), bool),
        "action_dim_mask": np.ones((B, A), bool),
        "dataset_id": np.zeros((B,), np.int32),
    }


@pytest.mark.parametrize("name,structure,head", CASES)
def test_every_backbone_structure_and_head(name, structure, head):
    cfg = make_config(name, structure, head)
    params = init_policy(cfg, 0, backbone_params=_backbone_params(name), compiler_options=FAST_COMPILE)
    batch = make_batch(cfg.backbone.image_size)

    @jit
    def loss_and_grad(p, b):
        def f(p):
            out = VLAPolicy(cfg).apply({"params": p}, b)
            return vla_loss(cfg, out, b)[0], out

        return jax.value_and_grad(f, has_aux=True)(p)

    (loss, out), grads = loss_and_grad(params, batch)
    assert out["action"].shape == (B, T, C, A) and out["gripper_logits"].shape == (B, T, C)
    if structure == "one_step_discrete":
        assert out["action_logits"].shape == (B, T, C, A, 16)
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))
    kernel = grads["backbone"]
    for key in PATCH_KERNEL.get(name, ("vision_model", "patch_embedding", "kernel")):
        kernel = kernel[key]
    assert float(jnp.abs(kernel).max()) > 0
    np.testing.assert_array_equal(np.asarray(out["action"][1, 0]), 0.0)  # the frame before the episode start


def test_paligemma_prefix_is_bidirectional_within_a_frame_and_causal_across_frames():
    """Interleaved PaliGemma: frame 0's action sees its own later prefix tokens, never frame 1."""
    cfg = make_config("paligemma", "interleaved", "mlp", has_gripper=False, action_dim=2)
    params = init_policy(cfg, 1, backbone_params=_backbone_params("paligemma"), compiler_options=FAST_COMPILE)
    batch = make_batch(cfg.backbone.image_size)
    run = jit(lambda p, b: VLAPolicy(cfg).apply({"params": p}, b, method="interleaved_features"))
    base = run(params, batch)
    later_frame = {**batch, "image": batch["image"].copy()}
    later_frame["image"][:, 1] = 255 - later_frame["image"][:, 1]
    moved = run(params, later_frame)
    np.testing.assert_allclose(moved[0, 0], base[0, 0], atol=1e-5)  # causal across blocks (sample 1: no frame 0)
    assert float(jnp.abs(moved[:, 1] - base[:, 1]).max()) > 1e-4

    # Within a block the image sees the text after it (prefix-LM), which a causal LM cannot: the image
    # tokens' hidden states move when the last instruction token changes.
    bb = backbone_lib.build(cfg.backbone)
    bparams = {"params": _backbone_params("paligemma")}

    @jit  # one program for the four calls (block is traced, not a Python branch)
    def hidden(tokens, block):
        def f(mdl):
            px = jnp.zeros((1, cfg.backbone.image_size, cfg.backbone.image_size, 3))
            x = jnp.concatenate([mdl.encode_images(px), mdl.embed_tokens(tokens)], axis=1)
            ids = jnp.full(x.shape[:2], jnp.where(block, 0, -1), jnp.int32)
            return mdl.decode(x, block_ids=ids)

        return bb.apply(bparams, method=f)

    q = cfg.backbone.image_tokens
    a, b = jnp.array([[5, 6, 7]]), jnp.array([[5, 6, 9]])
    assert float(jnp.abs(hidden(a, True)[:, :q] - hidden(b, True)[:, :q]).max()) > 1e-4
    np.testing.assert_allclose(hidden(a, False)[:, :q], hidden(b, False)[:, :q], atol=1e-6)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_policy_io_preprocessing_carries_the_family_image_statistics(name):
    """One Preprocessing (policy_io) per model: the export writes it and the policy normalises with it, so a
    SigLIP family (0.5 / 0.5) is never fed CLIP-normalised pixels or the other way round."""
    cfg = make_config(name, "policy_head", "lstm")
    pre = image_preprocessing(cfg, "pad", "BGR")
    siglip = name in ("paligemma", "smolvlm")
    assert (pre.mean, pre.std) == ((SIGLIP_MEAN, SIGLIP_STD) if siglip else (CLIP_MEAN, CLIP_STD))
    side = cfg.backbone.image_size
    assert pre.image_size == (side, side) and (pre.resize_mode, pre.input_channel_order) == ("pad", "BGR")
    frames = np.array([[[[0, 255, 51]]]], np.uint8)
    expected = (frames / 255.0 - np.asarray(pre.mean)) / np.asarray(pre.std)
    np.testing.assert_allclose(np.asarray(normalize_images(jnp.asarray(frames), pre)), expected, rtol=1e-6)


def _hf_count(config) -> int:
    """HF's parameter count of the same architecture, built on the meta device (no memory)."""
    import torch
    import transformers

    model_cls = getattr(transformers, backbone_lib.family(config.model_type).hf_class)
    with torch.device("meta"):
        model = model_cls(transformers.AutoConfig.for_model(**config.to_hf_dict()))
    return sum(p.numel() for p in model.parameters())  # tied weights are one parameter


RELEASED = {
    "microsoft/kosmos-2-patch14-224": Kosmos2Config.full(),
    "CLIP ViT-B/16 + kosmos-2-patch14-224": ClipKosmos2Config.full(),
    "google/paligemma2-3b-pt-224": PaliGemmaConfig.full(),
    "SmolVLM2-256M": SmolVLMConfig.full("256M"),
    "SmolVLM2-500M": SmolVLMConfig.full("500M"),
    "llava-hf/llava-1.5-7b-hf": LlavaConfig.full(),
    "Qwen/Qwen2.5-VL-3B-Instruct": Qwen2_5_VLConfig.full("3B"),
    "HuggingFaceM4/idefics-9b": IdeficsConfig.full(),
}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_sizes_have_hf_parameter_counts(name):
    config = RELEASED[name]
    assert backbone_lib.param_count(config) == _hf_count(config)


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_configs_round_trip_through_hf_json_and_our_dict(name):
    import transformers

    config = RELEASED[name]
    cls = type(config)
    assert cls.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    hf = config.to_hf_dict()
    parsed = transformers.AutoConfig.for_model(**hf).to_dict()  # what convert-hf reads back (defaults filled)
    assert cls.from_hf_dict(parsed) == config
    vla = VLAConfig(backbone=config.replace(dtype="bfloat16"))
    assert VLAConfig.from_dict(json.loads(json.dumps(vla.to_dict()))) == vla
