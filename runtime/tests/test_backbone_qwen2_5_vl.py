"""Qwen2.5-VL adapter vs transformers' own `Qwen2_5_VLForConditionalGeneration` (tiny random models built here):
the image tokens (processor patch layout into `visual`), the LM with HF's 3-D positions from its own input-ids
path, and a KV-cached decode that splits an image-bearing sequence (positions continue across the cache)."""

import pytest
import torch
from backbone_checks import check_cached_decode, check_logits_of_last_rows, randomize, save_and_reload

transformers = pytest.importorskip("transformers")

VOCAB, IMAGE_TOKEN, SIZE = 100, 99, 56  # 56 px / 14 = 4 x 4 patches, merged 2 x 2 = 4 image tokens


def _tiny(tied: bool, seed: int = 0):
    text = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
        bos_token_id=1,
        eos_token_id=2,
    )
    vision = dict(
        depth=2,
        hidden_size=24,
        intermediate_size=40,
        num_heads=2,
        window_size=28,
        out_hidden_size=32,
        fullatt_block_indexes=[1],
        image_size=SIZE,  # ours: the frame side the export writes
    )
    cfg = transformers.Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=IMAGE_TOKEN,
        video_token_id=98,
        vision_start_token_id=96,
        vision_end_token_id=97,
        tie_word_embeddings=tied,
    )
    torch.manual_seed(seed)
    hf = transformers.Qwen2_5_VLForConditionalGeneration(cfg).eval()
    randomize(hf, seed)
    return hf, {"model_type": "qwen2_5_vl", **cfg.to_dict()}


def _hf_pixels(pixels):
    """The image processor's own patchify of each (already normalised) frame."""
    import numpy as np
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    proc = Qwen2VLImageProcessorPil()
    flat = [proc.patchify(p.numpy(), patch_size=14, merge_size=2, temporal_patch_size=2)[0] for p in pixels]
    grid = torch.tensor([[1, SIZE // 14, SIZE // 14]] * len(pixels))
    return torch.from_numpy(np.concatenate(flat)), grid


@pytest.mark.parametrize("tied", [True, False])
@torch.no_grad()
def test_qwen2_5_vl_adapter_matches_hf(tied, tmp_path):
    hf, backbone = _tiny(tied)
    adapter = save_and_reload(hf, backbone, tmp_path)
    assert adapter.missing_ok() == ({"lm_head.weight"} if tied else set())
    pixels = torch.randn(2, 3, SIZE, SIZE)
    flat, grid = _hf_pixels(pixels)
    image = adapter.encode_images(pixels)
    q = 4
    assert image.shape == (2, q, 32)
    ref_image = hf.model.get_image_features(flat, grid, return_dict=True).pooler_output
    assert (image.reshape(-1, 32) - torch.cat(ref_image)).abs().max() < 1e-5

    s = q + 9
    ids = torch.randint(3, VOCAB - 5, (2, s))
    ids[:, 2 : 2 + q] = IMAGE_TOKEN
    types = (ids == IMAGE_TOKEN).int()
    mask = torch.ones(2, s, dtype=torch.long)
    mask[1, -3:] = 0
    out = hf(
        input_ids=ids,
        pixel_values=flat,
        image_grid_thw=grid,
        mm_token_type_ids=types,
        attention_mask=mask,
        output_hidden_states=True,
    )
    embeds = adapter.embed_tokens(ids)
    embeds[:, 2 : 2 + q] = image
    valid = mask.bool()
    image_index = torch.where(types.bool(), torch.cumsum(types, 1) - 1, -1)
    hidden = adapter.decode(embeds, valid, image_index=image_index)
    assert (hidden - out.hidden_states[-1])[valid].abs().max() < 1e-5
    assert (adapter.lm_logits(hidden) - out.logits)[valid].abs().max() < 1e-5
    flat_positions = adapter.decode(embeds, valid)  # 1-D positions: not HF's model
    assert (flat_positions - out.hidden_states[-1])[valid].abs().max() > 1e-3

    # cached: text + image, then text, then one token -> the full decode (positions continue after the image)
    cache = adapter.new_cache()
    cuts = [0, 2 + q + 1, s - 1, s]
    parts = [
        adapter.decode(embeds[:1, a:b], None, cache, image_index=image_index[:1, a:b]) for a, b in zip(cuts, cuts[1:])
    ]
    assert (torch.cat(parts, dim=1) - hidden[:1]).abs().max() < 1e-5
    check_cached_decode(adapter)
    check_logits_of_last_rows(adapter)


def test_qwen2_5_vl_adapter_facts():
    hf, backbone = _tiny(True)
    from vla_runtime.backbones import build_backbone

    with torch.device("meta"):
        adapter = build_backbone(backbone)
    assert sum(p.numel() for p in adapter.model.parameters()) == sum(p.numel() for p in hf.parameters())
    assert (adapter.hidden_size, adapter.vocab_size, adapter.image_size) == (32, VOCAB, SIZE)
    assert adapter.kv_values_per_token == 2 * 2 * 2 * 8
