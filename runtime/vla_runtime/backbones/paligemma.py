"""PaliGemma / PaliGemma 2 (`model_type` "paligemma") on transformers' `PaliGemmaForConditionalGeneration`.

SigLIP tower + linear projector (`get_image_features(...).pooler_output`, not
rescaled) feeding Gemma (PaliGemma 1) or Gemma 2 (PaliGemma 2). Gemma's
sqrt(hidden) scale lives in HF's scaled token embedding, so `embed_tokens` is
`get_input_embeddings()` and `decode` passes `inputs_embeds` through unchanged.

Attention is HF's prefix-LM: `decode` builds the masks PaliGemmaModel.forward
builds from `token_type_ids` (causal OR same block id >= 0, AND padding; Gemma 2
adds its sliding-window mask) with `block_sequence_ids`, always materialised:
the text config has `use_bidirectional_attention`, so an absent mask would make
SDPA bidirectional. Positions are 1-indexed, as PaliGemma's. Logits: `lm_head`
(tied to the embedding), then Gemma 2's final soft-capping, applied here because
transformers 5.20's PaliGemma forward leaves it out (5.24's applies it).
"""

from __future__ import annotations

from typing import Any

import torch

from .base import BackboneAdapter, build_hf, hf_config, kv_argument


class PaliGemmaAdapter(BackboneAdapter):
    model_type = "paligemma"
    attention = "prefix_lm"
    first_position = 1

    def __init__(self, backbone: dict[str, Any], dtype: torch.dtype = torch.float32):
        from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration

        self.model = build_hf(PaliGemmaForConditionalGeneration, hf_config(PaliGemmaConfig, backbone), dtype)
        text = self.model.config.text_config
        self.text_config = text
        self.set_decoder_facts(text, self.model.config.vision_config)
        self.logit_softcap = getattr(text, "final_logit_softcapping", None)
        self.decoder = self.model.model.language_model
        if getattr(text, "attn_logit_softcapping", None):
            # Gemma 2 soft-caps attention logits, which SDPA cannot: transformers >= 5.2x runs it eager by
            # itself, 5.20 silently ran SDPA without the cap. Eager on both.
            self.decoder.set_attn_implementation("eager")

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.model.get_image_features(pixels.to(self.dtype), return_dict=True).pooler_output

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    def run_decoder(self, embeds, key_mask, positions, kv, block_ids):
        from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

        kwargs = dict(
            config=self.text_config,
            inputs_embeds=embeds,
            attention_mask=key_mask,
            position_ids=positions,
            block_sequence_ids=block_ids,
            allow_is_causal_skip=False,
            **{kv_argument(create_causal_mask): kv},
        )
        masks = {"full_attention": create_causal_mask(**kwargs)}
        if getattr(self.text_config, "sliding_window", None) is not None:
            masks["sliding_attention"] = create_sliding_window_causal_mask(**kwargs)
        else:  # Gemma 1 takes the full-attention mask as is
            masks = masks["full_attention"]
        return self.call_decoder(embeds, masks, positions, kv)

    def lm_head_weight(self) -> torch.Tensor:
        return self.model.lm_head.weight
