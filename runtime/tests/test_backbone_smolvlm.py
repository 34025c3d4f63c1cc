"""SmolVLM adapter vs transformers' own `SmolVLMForConditionalGeneration` (tiny random models built here)."""

import pytest
import torch
from backbone_checks import check_cached_decode, check_logits_of_last_rows, randomize, save_and_reload

transformers = pytest.importorskip("transformers")

VOCAB, IMAGE_TOKEN = 100, 99


def _tiny(tied: bool, seed: int = 0, scale_factor: int = 2):
    text = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=tied,
    )
    vision = dict(
        hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=4
    )
    cfg = transformers.SmolVLMConfig(
        text_config=text,
        vision_config=vision,
        scale_factor=scale_factor,
        image_token_id=IMAGE_TOKEN,
        tie_word_embeddings=tied,
    )
    torch.manual_seed(seed)
    hf = transformers.SmolVLMForConditionalGeneration(cfg).eval()
    randomize(hf, seed)
    return hf, {"model_type": "smolvlm", **cfg.to_dict()}


@pytest.mark.parametrize("tied,scale_factor", [(True, 2), (False, 4)])
@torch.no_grad()
def test_smolvlm_adapter_matches_hf(tied, scale_factor, tmp_path):
    hf, backbone = _tiny(tied, scale_factor=scale_factor)
    adapter = save_and_reload(hf, backbone, tmp_path)
    assert adapter.missing_ok() == ({"lm_head.weight"} if tied else set())
    pixels = torch.randn(2, 3, 32, 32)
    image = adapter.encode_images(pixels)
    q = 64 // scale_factor**2
    assert image.shape == (2, q, 32)
    ref_image = hf.model.get_image_features(pixels[:, None], return_dict=True).pooler_output
    assert (image.reshape(-1, 32) - torch.cat(ref_image)).abs().max() < 1e-5

    s = q + 9
    ids = torch.randint(1, VOCAB - 1, (2, s))
    ids[:, 2 : 2 + q] = IMAGE_TOKEN
    mask = torch.ones(2, s, dtype=torch.long)
    mask[1, -3:] = 0
    out = hf(input_ids=ids, pixel_values=pixels[:, None], attention_mask=mask, output_hidden_states=True)
    embeds = adapter.embed_tokens(ids)
    embeds[:, 2 : 2 + q] = image
    valid = mask.bool()
    hidden = adapter.decode(embeds, valid)
    assert (hidden - out.hidden_states[-1])[valid].abs().max() < 1e-5
    assert (adapter.lm_logits(hidden) - out.logits)[valid].abs().max() < 1e-5
    check_cached_decode(adapter)
    check_logits_of_last_rows(adapter)


def test_smolvlm_adapter_facts():
    hf, backbone = _tiny(True)
    from vla_runtime.backbones import build_backbone

    with torch.device("meta"):
        adapter = build_backbone(backbone)
    assert sum(p.numel() for p in adapter.model.parameters()) == sum(p.numel() for p in hf.parameters())
    assert (adapter.hidden_size, adapter.vocab_size, adapter.image_size) == (32, VOCAB, 32)
    assert adapter.kv_values_per_token == 2 * 2 * 2 * 8
