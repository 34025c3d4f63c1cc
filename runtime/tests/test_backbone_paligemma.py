"""PaliGemma adapter vs transformers' own `PaliGemmaForConditionalGeneration` (tiny random models built here).

Two text decoders: Gemma 2 (PaliGemma 2: soft-capping, sliding-window layers, extra norms) and Gemma (PaliGemma 1).
"""

import pytest
import torch
from backbone_checks import check_cached_decode, check_logits_of_last_rows, randomize, save_and_reload

transformers = pytest.importorskip("transformers")

VOCAB, IMAGE_TOKEN = 120, 119


def _tiny(text_model_type: str, seed: int = 0):
    text = dict(
        model_type=text_model_type,
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
    )
    if text_model_type == "gemma2":
        text.update(sliding_window=6, final_logit_softcapping=3.0, attn_logit_softcapping=5.0, query_pre_attn_scalar=8)
    vision = dict(
        model_type="siglip_vision_model",
        hidden_size=24,
        intermediate_size=40,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=16,
        patch_size=4,
    )
    cfg = transformers.PaliGemmaConfig(
        text_config=text, vision_config=vision, projection_dim=32, image_token_id=IMAGE_TOKEN
    )
    torch.manual_seed(seed)
    hf = transformers.PaliGemmaForConditionalGeneration(cfg).eval()
    randomize(hf)
    return hf, {"model_type": "paligemma", **cfg.to_dict()}


@pytest.mark.parametrize("text_model_type", ["gemma2", "gemma"])
@torch.no_grad()
def test_paligemma_adapter_matches_hf(text_model_type, tmp_path):
    hf, backbone = _tiny(text_model_type)
    adapter = save_and_reload(hf, backbone, tmp_path)
    pixels = torch.randn(2, 3, 16, 16)
    image = adapter.encode_images(pixels)
    assert image.shape == (2, 16, 32)

    # HF's prefix-LM forward: 16 image tokens, a prompt (prefix, token_type 0), a suffix (token_type 1),
    # padding at the end of row 1.
    s = 16 + 9
    ids = torch.randint(1, VOCAB - 1, (2, s))
    ids[:, :16] = IMAGE_TOKEN
    token_type = torch.zeros(2, s, dtype=torch.long)
    token_type[:, 16 + 5 :] = 1
    mask = torch.ones(2, s, dtype=torch.long)
    mask[1, -2:] = 0
    ref = hf.model(input_ids=ids, pixel_values=pixels, token_type_ids=token_type, attention_mask=mask)
    embeds = adapter.embed_tokens(ids.masked_fill(ids == IMAGE_TOKEN, 0))
    embeds[:, :16] = image
    valid = mask.bool()
    blocks = torch.where(token_type == 0, 0, -1)
    hidden = adapter.decode(embeds, valid, block_ids=blocks)
    assert (hidden - ref.last_hidden_state)[valid].abs().max() < 1e-5
    # Gemma 2's final soft-capping, as transformers 5.24's forward applies it (5.20's PaliGemma skipped it).
    logits = hf.lm_head(ref.last_hidden_state)
    cap = getattr(hf.config.text_config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    assert (adapter.lm_logits(hidden) - logits)[valid].abs().max() < 1e-5
    # Without block ids the prefix is causal: the prompt's hidden states must change (the mask is used).
    assert (adapter.decode(embeds, valid) - hidden)[valid].abs().max() > 1e-3
    check_cached_decode(adapter, seq_len=14)  # longer than Gemma 2's sliding window
    check_logits_of_last_rows(adapter)


@torch.no_grad()
def test_paligemma_cached_prefix_blocks(tmp_path):
    """Interleaved growth: block 0, its causal tail, block 1, ... through the cache == one full decode."""
    hf, backbone = _tiny("gemma2", seed=1)
    adapter = save_and_reload(hf, backbone, tmp_path)
    x = torch.randn(1, 12, adapter.hidden_size) * 0.5
    blocks = torch.tensor([[0, 0, 0, 0, -1, 1, 1, 1, 1, -1, 2, -1]])
    full = adapter.decode(x, block_ids=blocks)
    cache = adapter.new_cache()
    cuts = [0, 5, 10, 12]
    parts = [adapter.decode(x[:, a:b], None, cache, block_ids=blocks[:, a:b]) for a, b in zip(cuts, cuts[1:])]
    assert (torch.cat(parts, 1) - full).abs().max() < 1e-5


def test_paligemma_adapter_facts():
    hf, backbone = _tiny("gemma2")
    from vla_runtime.backbones import build_backbone

    with torch.device("meta"):
        adapter = build_backbone(backbone)
    assert sum(p.numel() for p in adapter.model.parameters()) == sum(p.numel() for p in hf.parameters())
    assert (adapter.hidden_size, adapter.vocab_size, adapter.image_size) == (32, VOCAB, 16)
    assert adapter.kv_values_per_token == 2 * 3 * 2 * 8
    assert adapter.missing_ok() == {"lm_head.weight"}
