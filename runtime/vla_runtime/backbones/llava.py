"""LLaVA (`model_type` "llava") on transformers' `LlavaForConditionalGeneration`.

CLIP tower -> HF's feature selection (`vision_feature_layer`, `vision_feature_select_strategy`:
"default" drops the class token) -> the multimodal projector, through `get_image_features`;
Llama-style decoder, causal, positions from 0, no embedding scale; logits from `lm_head`.
vla_jax's LLaVA family (vla_jax/models/llava.py) exports to it: tests/test_export_backbones.py.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import BackboneAdapter, build_hf, hf_config


class LlavaAdapter(BackboneAdapter):
    model_type = "llava"
    attention = "causal"
    first_position = 0

    def __init__(self, backbone: dict[str, Any], dtype: torch.dtype = torch.float32):
        from transformers import LlavaConfig, LlavaForConditionalGeneration

        self.model = build_hf(LlavaForConditionalGeneration, hf_config(LlavaConfig, backbone), dtype)
        self.set_decoder_facts(self.model.config.text_config, self.model.config.vision_config)
        self.decoder = self.model.model.language_model

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        cfg = self.model.config
        out = self.model.model.get_image_features(
            pixels.to(self.dtype),
            vision_feature_layer=cfg.vision_feature_layer,
            vision_feature_select_strategy=cfg.vision_feature_select_strategy,
            return_dict=True,
        )
        return torch.stack(list(out.pooler_output))

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    def lm_head_weight(self) -> torch.Tensor:
        return self.model.lm_head.weight
