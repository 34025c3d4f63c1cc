"""Kosmos-2 adapter vs transformers' own `Kosmos2Model` forward (tiny random models built here)."""

import pytest
import torch
from backbone_checks import check_cached_decode, check_logits_of_last_rows, save_and_reload

transformers = pytest.importorskip("transformers")


def _tiny(seed: int, **text_overrides):
    torch.manual_seed(seed)
    text = dict(
        vocab_size=97,
        embed_dim=32,
        layers=2,
        ffn_dim=64,
        attention_heads=4,
        max_position_embeddings=64,
        scale_embedding=True,
    )
    text.update(text_overrides)
    cfg = transformers.Kosmos2Config(
        text_config=text,
        latent_query_num=5,
        vision_config=dict(
            hidden_size=24,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
    )
    hf = transformers.Kosmos2Model(cfg).eval()
    with torch.no_grad():  # HF initialises norms to 1/0 and some biases to 0: random everything, so all count
        for name, p in hf.named_parameters():
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    return hf, {"model_type": "kosmos-2", **cfg.to_dict()}


@pytest.mark.parametrize("seed,overrides", [(0, {}), (1, {"scale_embedding": False, "layers": 3})])
@torch.no_grad()
def test_kosmos2_adapter_matches_hf(seed, overrides, tmp_path):
    hf, backbone = _tiny(seed, **overrides)
    adapter = save_and_reload(hf, backbone, tmp_path)
    pixels = torch.randn(2, 3, 32, 32)
    image = adapter.encode_images(pixels)
    ref_image = hf.get_image_features(pixels, return_dict=True).pooler_output
    assert (image / adapter.embed_scale - ref_image).abs().max() < 1e-5

    # HF's own multimodal forward: image tokens after <s>, text after them, padding at the end of row 1.
    s = 12
    ids = torch.randint(3, 97, (2, s))
    ids[:, 0] = 0
    img_pos = torch.zeros(2, s, dtype=torch.bool)
    img_pos[:, 1:6] = True
    mask = torch.ones(2, s, dtype=torch.long)
    mask[1, -3:] = 0
    ref = hf(
        pixel_values=pixels, input_ids=ids, image_embeds_position_mask=img_pos, attention_mask=mask
    ).last_hidden_state
    embeds = adapter.embed_tokens(ids)
    embeds[img_pos] = image.reshape(-1, image.shape[-1])
    valid = mask.bool()
    assert (adapter.decode(embeds, valid) - ref)[valid].abs().max() < 1e-5
    # HF's input_ids path numbers positions by counting non-pad ids; explicit positions reproduce it.
    ref2 = hf(
        pixel_values=pixels,
        input_ids=ids.masked_fill(~valid, 1),
        image_embeds_position_mask=img_pos,
        attention_mask=mask,
    ).last_hidden_state
    pos = torch.cumsum(valid.long(), 1) * valid.long() + 1
    assert (adapter.decode(embeds, valid, positions=pos) - ref2)[valid].abs().max() < 1e-5
    # Tied LM head (Kosmos2ForConditionalGeneration's lm_head is embed_tokens).
    h = torch.randn(3, adapter.hidden_size)
    assert torch.allclose(adapter.lm_logits(h), h @ hf.get_input_embeddings().weight.t(), atol=1e-5)
    check_cached_decode(adapter)
    check_logits_of_last_rows(adapter)


def test_kosmos2_adapter_counts_and_facts():
    hf, backbone = _tiny(3)
    from vla_runtime.backbones import build_backbone

    with torch.device("meta"):
        adapter = build_backbone(backbone)
    assert sum(p.numel() for p in adapter.model.parameters()) == sum(p.numel() for p in hf.parameters())
    assert (adapter.hidden_size, adapter.vocab_size, adapter.image_size) == (32, 97, 32)
    assert adapter.kv_values_per_token == 2 * 2 * 32
