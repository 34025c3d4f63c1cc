"""The CLIP + Kosmos-2 hybrid in the runtime: a `CLIPVisionModel` tower inside `Kosmos2Model` equals CLIP's own forward.

The hybrid's export is a plain "kosmos-2" config whose `vision_config` is the CLIP tower's
(BACKBONE_INTERFACE.md: Kosmos-2's vision tower is a CLIP ViT), so the runtime runs it with the
Kosmos-2 adapter. What has to hold, against transformers' own `CLIPVisionModel`: a CLIP checkpoint's
tower, renamed into Kosmos-2's `vision_model.model.*`, gives CLIP's hidden states, and the image tokens
are Kosmos-2's projection of CLIP's post-layernormed, L2-normalised features, with a CLIP width (40)
that differs from the text width (32).
"""

import pytest
import torch
import torch.nn.functional as F
from backbone_checks import check_cached_decode, randomize, save_and_reload
from safetensors.torch import load_file

transformers = pytest.importorskip("transformers")

CLIP_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "image_size",
    "patch_size",
    "layer_norm_eps",
    "hidden_act",
)


@pytest.mark.parametrize(
    "clip_kwargs",
    [
        dict(hidden_size=40, patch_size=8, hidden_act="quick_gelu"),
        dict(hidden_size=24, patch_size=4, hidden_act="gelu"),
    ],
)
@torch.no_grad()
def test_clip_tower_in_kosmos2_matches_clip(clip_kwargs, tmp_path):
    clip_cfg = transformers.CLIPVisionConfig(
        intermediate_size=56, num_hidden_layers=2, num_attention_heads=4, image_size=32, **clip_kwargs
    )
    torch.manual_seed(0)
    clip = transformers.CLIPVisionModel(clip_cfg).eval()
    randomize(clip, seed=1)
    vision = {k: getattr(clip_cfg, k) for k in CLIP_KEYS}
    cfg = transformers.Kosmos2Config(
        vision_config=vision,
        latent_query_num=6,
        text_config=dict(
            vocab_size=90, embed_dim=32, layers=2, ffn_dim=48, attention_heads=4, max_position_embeddings=64
        ),
    )
    kosmos = transformers.Kosmos2Model(cfg).eval()
    randomize(kosmos, seed=2)
    clip.save_pretrained(str(tmp_path / "clip"), safe_serialization=True)  # a CLIP checkpoint folder
    saved = load_file(str(tmp_path / "clip" / "model.safetensors"))
    # transformers 5 saves CLIPVisionModel without the `vision_model.` prefix older checkpoints have.
    tower = {f"vision_model.model.{k.removeprefix('vision_model.')}": v for k, v in saved.items()}
    missing, unexpected = kosmos.load_state_dict(tower, strict=False)
    assert not unexpected and all(not k.startswith("vision_model.") for k in missing)

    adapter = save_and_reload(kosmos, {"model_type": "kosmos-2", **cfg.to_dict()}, tmp_path / "hybrid")
    pixels = torch.randn(2, 3, 32, 32)
    ref = clip(pixel_values=pixels)
    ours = adapter.model.vision_model(pixel_values=pixels).last_hidden_state
    assert (ours - ref.last_hidden_state).abs().max() < 1e-5
    features = F.normalize(clip.post_layernorm(ref.last_hidden_state), dim=-1)
    expected, _ = kosmos.image_to_text_projection(features)
    image = adapter.encode_images(pixels)
    assert image.shape == (2, 6, 32)
    assert (image - expected * adapter.embed_scale).abs().max() < 1e-5
    check_cached_decode(adapter)
