"""Qwen2.5-VL equals Hugging Face's torch model stage by stage (vision tower with window attention, merger, Qwen2
LM with 3-D multimodal positions), and what makes it match is really there: the windows, the full-attention
blocks, the multimodal positions (HF's own `get_rope_index`), the token counts of HF's processor."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_hf import build_tiny_random_qwen2_5_vl, save_tiny_random

from vla_jax.convert.hf_checkpoint import load_hf_checkpoint
from vla_jax.convert.verify_hf import STAGES, compare_with_hf, flax_outputs, hf_outputs, random_inputs
from vla_jax.models.qwen2_5_vl import Qwen2_5_VLConfig, mrope_positions

# A: released window (112 px = 4 x 4 merge units: 2 x 2 windows at 224 px), last block full attention.
# B: 84 px windows (3 x 3 units: uneven 3 + 3 + 2 windows per side), full blocks 0 and 2, GQA 4:1, untied head,
#    other mrope sections and rope_theta.
CASES = {
    "a": dict(),
    "b": dict(
        vision_window_size=84,
        vision_depth=3,
        vision_fullatt_block_indexes=[0, 2],
        text_num_hidden_layers=3,
        text_num_key_value_heads=1,
        tie_word_embeddings=False,
        text_rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 1, 1]},
    ),
}


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf_qwen")
    dirs = {name: save_tiny_random("qwen2_5_vl", root / name, seed=3, **kw) for name, kw in CASES.items()}
    # Qwen2-VL: LayerNorm / fc1-fc2 tower without windows, the same LM and positions
    dirs["qwen2_vl"] = save_tiny_random("qwen2_vl", root / "qwen2_vl", seed=4, text_num_key_value_heads=1)
    return dirs


@pytest.mark.parametrize("name", [*sorted(CASES), "qwen2_vl"])
def test_qwen_parity_with_hf(hf, name):
    result = compare_with_hf(hf[name], seed=11, batch=2, text_len=6, fast_compile=True)
    assert result["ok"] and result["model_type"] == ("qwen2_vl" if name == "qwen2_vl" else "qwen2_5_vl"), result
    assert all(0.0 <= result[k] <= 1e-4 for k in STAGES), result


def test_qwen2_vl_config_round_trips_through_hf_json():
    import transformers

    from vla_jax.models.qwen2_vl import Qwen2VLConfig

    config = Qwen2VLConfig.tiny(vision={"image_size": 84})
    parsed = transformers.AutoConfig.for_model(**config.to_hf_dict()).to_dict()
    assert Qwen2VLConfig.from_hf_dict(parsed) == config and config.image_tokens == 9


def test_windows_full_blocks_and_3d_positions_are_what_make_it_match(hf):
    """All-full attention, no full blocks, or plain 1-D positions: the stages miss HF by far."""
    config, params = load_hf_checkpoint(hf["b"])
    inputs = random_inputs(config, seed=0, batch=2, text_len=6)
    theirs = hf_outputs(hf["b"], inputs, config=config)

    def miss(cfg, x, stage):
        ours = flax_outputs(cfg, params, x, fast_compile=True)[stage]
        return float(np.abs(ours - theirs[stage]).max())

    assert miss(config, inputs, "vision_tower") < 1e-4 and miss(config, inputs, "lm_last_hidden") < 1e-4
    assert miss(config.replace(vision={"window_size": config.image_size}), inputs, "vision_tower") > 1e-2
    assert miss(config.replace(vision={"fullatt_block_indexes": ()}), inputs, "vision_tower") > 1e-2
    seq = inputs["input_ids"].shape[1]
    flat = {**inputs, "position_ids": np.broadcast_to(np.arange(seq), (2, seq)).astype(np.int64)}
    assert miss(config, flat, "lm_last_hidden") > 1e-2


def test_mrope_positions_equal_hf_get_rope_index_with_several_images_and_padding():
    """Two images in one row, text between and after, padding inside the text (the interleaved structure's
    layout before packing): our positions are HF's exactly, padding slots 0."""
    import torch

    model = build_tiny_random_qwen2_5_vl(seed=0)
    grid = 3  # merged tokens per side (HF grid_thw in patches: 6 x 6)
    q = grid * grid
    pieces = [("t", 2), ("i", q), ("t", 3), ("i", q), ("t", 2)]
    kinds = np.concatenate([np.full(n, k == "i") for k, n in pieces])
    s = kinds.size
    valid = np.ones((2, s), bool)
    valid[1, [1, 2 + q + 1, s - 1]] = False  # text padding before, between and after the images
    image_index = np.where(kinds, (np.cumsum(kinds) - 1) % q, -1)[None].repeat(2, 0)
    ids = np.where(kinds, model.config.image_token_id, 7)[None].repeat(2, 0)
    theirs, _ = model.model.get_rope_index(
        torch.from_numpy(ids),
        mm_token_type_ids=torch.from_numpy(kinds.astype(np.int32))[None].repeat(2, 1),
        image_grid_thw=torch.tensor([[1, 2 * grid, 2 * grid]] * 4),
        attention_mask=torch.from_numpy(valid.astype(np.int64)),
    )
    ours = np.asarray(mrope_positions(valid, image_index, grid))
    np.testing.assert_array_equal(ours, theirs.numpy())


@pytest.mark.parametrize("size,tokens", [(224, 64), (448, 256)])
def test_image_tokens_per_frame_are_hf_processor_counts(size, tokens):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    config = Qwen2_5_VLConfig.full(vision={"image_size": size})
    patches = Qwen2VLImageProcessorPil().get_number_of_image_patches(size, size)
    assert config.image_tokens == patches // config.vision.spatial_merge_size**2 == tokens


def test_unrolled_layers_load_and_run_the_same_model(hf):
    """scan_layers=False: the vision blocks and the LM layers unroll (`layers_i`) and give the scanned numbers."""
    config, params = load_hf_checkpoint(hf["a"])
    unrolled_cfg, unrolled = load_hf_checkpoint(hf["a"], scan_layers=False)
    assert "layers_1" in unrolled["vision_model"]["blocks"]
    inputs = random_inputs(config, seed=4, batch=2, text_len=6)
    ref = flax_outputs(config, params, inputs, fast_compile=True)
    got = flax_outputs(unrolled_cfg, unrolled, inputs, fast_compile=True)
    for k in STAGES:
        np.testing.assert_allclose(got[k], ref[k], atol=1e-5)
