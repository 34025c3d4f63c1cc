"""The torch runtime's Kosmos-2 backbone equals Hugging Face's torch Kosmos2Model number for number.

transformers is used here only as the reference; vla_runtime itself never imports it.
"""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from vla_runtime.kosmos2 import BackboneConfig, Kosmos2Backbone, KVCache, parameter_count  # noqa: E402


def _tiny_hf(seed: int, **text_overrides):
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
        vision_config=dict(
            hidden_size=24,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        latent_query_num=5,
    )
    hf = transformers.Kosmos2Model(cfg).eval()
    ours = Kosmos2Backbone(BackboneConfig.from_hf_dict(cfg.to_dict())).eval()
    missing, unexpected = ours.load_state_dict(hf.state_dict(), strict=True)
    assert not missing and not unexpected
    return hf, ours


@pytest.mark.parametrize("seed,overrides", [(0, {}), (1, {"scale_embedding": False, "layers": 3})])
@torch.no_grad()
def test_backbone_matches_hf(seed, overrides):
    hf, ours = _tiny_hf(seed, **overrides)
    pixels = torch.randn(2, 3, 32, 32)
    img_hf = hf.get_image_features(pixels, return_dict=True)
    vis_ref = hf.vision_model.model.post_layernorm(img_hf.last_hidden_state)
    assert torch.allclose(ours.vision_features(pixels), vis_ref, atol=1e-5, rtol=0)
    img = ours.image_to_text(pixels)
    assert (img - img_hf.pooler_output).abs().max() < 1e-5

    # Full model: image tokens spliced in after <s>, text after, padding at the end of row 1.
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
    emb = ours.text_model.model.embed_tokens(ids).clone()
    emb[img_pos] = img.reshape(-1, img.shape[-1])
    emb = emb * ours.text_model.model.embed_scale
    out = ours.decode(emb, mask.bool())
    valid = mask.bool()
    assert (out - ref)[valid].abs().max() < 1e-5
    # HF's input_ids path numbers positions by counting non-pad ids; explicit positions reproduce it.
    ids_padded = ids.masked_fill(~valid, 1)
    ref2 = hf(
        pixel_values=pixels, input_ids=ids_padded, image_embeds_position_mask=img_pos, attention_mask=mask
    ).last_hidden_state
    pos = (torch.cumsum(valid.long(), 1) * valid.long()) + 1
    assert ((ours.decode(emb, valid, positions=pos) - ref2)[valid]).abs().max() < 1e-5


@torch.no_grad()
def test_kv_cache_equals_full_decode():
    _, ours = _tiny_hf(2)
    x = torch.randn(2, 10, 32)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[0, 3] = False
    full = ours.decode(x, mask)
    cache = KVCache()
    parts = [ours.decode(x[:, a:b], mask[:, a:b], cache) for a, b in [(0, 4), (4, 5), (5, 10)]]
    assert cache.length == 10
    assert (torch.cat(parts, dim=1) - full).abs().max() < 1e-5


def test_parameter_count_matches_hf():
    hf, ours = _tiny_hf(3)
    assert parameter_count(ours.config) == sum(p.numel() for p in hf.parameters())
