"""LLaVA adapter vs transformers' own `LlavaForConditionalGeneration` (tiny random models built here)."""

import pytest
import torch
from backbone_checks import check_cached_decode, check_logits_of_last_rows, randomize, save_and_reload

transformers = pytest.importorskip("transformers")

VOCAB, IMAGE_TOKEN = 100, 99


def _tiny(strategy: str, layer: int, seed: int = 0):
    text = dict(
        model_type="llama",
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    vision = dict(
        model_type="clip_vision_model",
        hidden_size=24,
        intermediate_size=40,
        num_hidden_layers=3,
        num_attention_heads=2,
        image_size=16,
        patch_size=4,
        projection_dim=24,
    )
    cfg = transformers.LlavaConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=IMAGE_TOKEN,
        vision_feature_select_strategy=strategy,
        vision_feature_layer=layer,
    )
    torch.manual_seed(seed)
    hf = transformers.LlavaForConditionalGeneration(cfg).eval()
    randomize(hf, seed)
    return hf, {"model_type": "llava", **cfg.to_dict()}


@pytest.mark.parametrize("strategy,layer", [("default", -2), ("full", -1)])
@torch.no_grad()
def test_llava_adapter_matches_hf(strategy, layer, tmp_path):
    hf, backbone = _tiny(strategy, layer)
    adapter = save_and_reload(hf, backbone, tmp_path)
    pixels = torch.randn(2, 3, 16, 16)
    image = adapter.encode_images(pixels)
    q = 16 + (strategy == "full")
    assert image.shape == (2, q, 32)

    s = q + 8
    ids = torch.randint(1, VOCAB - 1, (2, s))
    ids[:, 1 : 1 + q] = IMAGE_TOKEN
    mask = torch.ones(2, s, dtype=torch.long)
    mask[1, -3:] = 0
    ref = hf(input_ids=ids, pixel_values=pixels, attention_mask=mask, output_hidden_states=True)
    embeds = adapter.embed_tokens(ids.masked_fill(ids == IMAGE_TOKEN, 0))
    embeds[:, 1 : 1 + q] = image
    valid = mask.bool()
    hidden = adapter.decode(embeds, valid)
    assert (hidden - ref.hidden_states[-1])[valid].abs().max() < 1e-5
    assert (adapter.lm_logits(hidden) - ref.logits)[valid].abs().max() < 1e-5
    check_cached_decode(adapter)
    check_logits_of_last_rows(adapter)
