"""IDEFICS adapter vs transformers' own `IdeficsForVisionText2Text` (tiny random models built here): two images per
row read by cross-attention, each slot the latest image at or before it; the media kept with the KV cache."""

import pytest
import torch
from backbone_checks import check_cached_decode, check_logits_of_last_rows, randomize, save_and_reload

from vla_runtime.backbones.idefics import IdeficsAdapter

transformers = pytest.importorskip("transformers")

VOCAB = 100  # + 2 additional ids: <fake_token_around_image> 100, <image> 101


def _tiny(seed: int = 0):
    cfg = transformers.IdeficsConfig(
        vocab_size=VOCAB,
        additional_vocab_size=2,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=4,
        num_attention_heads=4,
        cross_layer_interval=2,
        qk_layer_norms=True,
        use_resampler=True,
        max_position_embeddings=128,
        perceiver_config=dict(resampler_depth=2, resampler_n_heads=2, resampler_head_dim=8, resampler_n_latents=3),
        vision_config=dict(
            embed_dim=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=2, image_size=16, patch_size=4
        ),
    )
    torch.manual_seed(seed)
    hf = transformers.IdeficsForVisionText2Text(cfg).eval()
    randomize(hf, seed)
    return hf, {"model_type": "idefics", **cfg.to_dict()}


@torch.no_grad()
def test_idefics_adapter_matches_hf_and_caches_the_media(tmp_path):
    hf, backbone = _tiny()
    adapter = save_and_reload(hf, backbone, tmp_path)
    assert isinstance(adapter, IdeficsAdapter)
    assert (adapter.vocab_size, adapter.image_token_id) == (VOCAB + 2, VOCAB + 1)
    pixels = torch.randn(2, 2, 3, 16, 16)
    media = adapter.encode_images(pixels.flatten(0, 1)).reshape(2, 2, 3, 24)
    s = 10
    ids = torch.randint(3, VOCAB + 2, (2, s))
    ids[:, [1, 6]] = adapter.image_token_id
    frame = torch.full((2, s), -1)
    frame[:, 1], frame[:, 6] = 0, 1
    reads = torch.tensor([[-1] + [0] * 5 + [1] * 4] * 2)
    mask = torch.ones(2, s, dtype=torch.long)
    mask[1, -2:] = 0
    ref = hf(
        input_ids=ids,
        pixel_values=pixels,
        attention_mask=mask,
        image_attention_mask=(reads[..., None] == torch.arange(2)).long(),
        output_hidden_states=True,
    )
    valid = mask.bool()
    hidden = adapter.decode(adapter.embed_tokens(ids), valid, media=media, media_frame=frame)
    assert (hidden - ref.hidden_states[-1])[valid].abs().max() < 1e-5
    assert (adapter.lm_logits(hidden) - ref.logits)[valid].abs().max() < 1e-5
    no_gate = adapter.decode(adapter.embed_tokens(ids), valid, media=media, media_frame=frame.clamp(min=0))
    assert (no_gate - hidden)[valid].abs().max() > 1e-3  # the slot before the first image really reads none

    # incremental, one image per call (cuts before, at and after the images): the same hidden states
    x, row = adapter.embed_tokens(ids[:1]), frame[:1]
    cache = adapter.new_cache()
    parts = []
    for a, b in [(0, 1), (1, 4), (4, 7), (7, 8), (8, s)]:
        given = row[:, a:b]
        images = sorted({int(f) for f in given[given >= 0]})
        kw = {"media": media[:1, images], "media_frame": given} if images else {}
        parts.append(adapter.decode(x[:, a:b], None, cache, **kw))
    assert (torch.cat(parts, dim=1) - hidden[:1]).abs().max() < 1e-5
    check_cached_decode(adapter)
    check_logits_of_last_rows(adapter)
