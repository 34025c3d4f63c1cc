"""SmolVLM (`model_type` "smolvlm") on transformers' `SmolVLMForConditionalGeneration`.

SigLIP-style tower (the whole frame, full patch mask: fixed-size frames, no image
splitting) -> HF's connector (pixel shuffle by `scale_factor`, then the modality
projection) -> Llama-style decoder, causal, positions from 0, no embedding scale.
The connector is called directly rather than through `get_image_features`,
which drops all-zero images (a black camera frame is still a frame here).
Logits: `lm_head` (tied to the embedding when the config says so).
"""

from __future__ import annotations

from typing import Any

import torch

from .base import BackboneAdapter, build_hf, hf_config


class SmolVLMAdapter(BackboneAdapter):
    model_type = "smolvlm"
    attention = "causal"
    first_position = 0

    def __init__(self, backbone: dict[str, Any], dtype: torch.dtype = torch.float32):
        from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration

        self.model = build_hf(SmolVLMForConditionalGeneration, hf_config(SmolVLMConfig, backbone), dtype)
        text = self.model.config.text_config
        self.set_decoder_facts(text, self.model.config.vision_config)
        self.decoder = self.model.model.text_model

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        inner = self.model.model
        hidden = inner.vision_model(pixel_values=pixels.to(self.dtype), return_dict=True).last_hidden_state
        return inner.connector(hidden)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    def lm_head_weight(self) -> torch.Tensor:
        return self.model.lm_head.weight
