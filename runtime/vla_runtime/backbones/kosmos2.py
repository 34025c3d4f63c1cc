"""Kosmos-2 (`model_type` "kosmos-2") on transformers' `Kosmos2Model`.

Image tokens are HF's `get_image_features(...).pooler_output` (vision tower,
post-LN, L2-normalised, latent-query projection) times `embed_scale`; the
decoder is `Kosmos2TextModel` on `inputs_embeds`. HF multiplies `inputs_embeds`
by `embed_scale` itself, so `decode` divides it out first (float32 rounding:
one ulp). Positions default to HF's `inputs_embeds` numbering, pad_token_id + 1
+ index, continuing from what the cache holds. The LM head is tied to
`embed_tokens` (Kosmos-2's `tie_word_embeddings`); logits are float32.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import BackboneAdapter, build_hf, hf_config


class Kosmos2Adapter(BackboneAdapter):
    model_type = "kosmos-2"
    attention = "causal"
    relative_positions = False  # sinusoidal position embeddings added to the decoder's inputs

    def __init__(self, backbone: dict[str, Any], dtype: torch.dtype = torch.float32):
        from transformers import Kosmos2Config, Kosmos2Model

        self.model = build_hf(Kosmos2Model, hf_config(Kosmos2Config, backbone), dtype)
        text = self.model.config.text_config
        self.embed_scale = float(self.model.text_model.model.embed_scale)
        self.first_position = int(text.pad_token_id) + 1
        self.hidden_size, self.vocab_size = int(text.embed_dim), int(text.vocab_size)
        self.image_size = int(self.model.config.vision_config.image_size)
        self.kv_values_per_token = 2 * int(text.layers) * int(text.embed_dim)
        self.decoder = self.model.text_model
        # The latent queries attend to every patch (Kosmos-2's resampler; transformers >= 5.2x builds it so).
        # transformers 5.20 flags this cross attention causal, which SDPA applies when no mask is given:
        # set it as later releases do, so both give the same image tokens.
        self.model.image_to_text_projection.x_attn.is_causal = False

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.model.get_image_features(pixels.to(self.dtype), return_dict=True).pooler_output
        return features * self.embed_scale

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids) * self.embed_scale

    def run_decoder(self, embeds, key_mask, positions, kv, block_ids):
        return self.call_decoder(embeds / self.embed_scale, key_mask, positions, kv)

    def lm_head_weight(self) -> torch.Tensor:
        return self.model.get_input_embeddings().weight
