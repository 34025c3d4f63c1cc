"""IDEFICS / Flamingo (`model_type` "idefics") on transformers' `IdeficsForVisionText2Text`.

A cross-attention family (`cross_attention_media`): a frame is ONE `<image>` slot in the sequence
(`image_slot_embeds`), and its media (`encode_images`: the vision tower's last hidden state through
the perceiver resampler, HF's `image_hidden_states`) are read by HF's gated cross-attention layers.
`decode` takes the media [B, M, Q, width] of the row and, per slot, `media_frame` (at an image slot
the index of its frame in the media, -1 elsewhere); every slot reads the latest valid image at or
before it (HF's `image_attention_mask`, one-hot, as the IDEFICS processor builds it), slots before
the first image read none. With a KV cache the media seen so far and the running image index are
kept with it (HF's cross-attention layers cache nothing: they re-read the media every call).

Causal LLaMA decoder, positions from 0, the decoupled embedding (ids past `vocab_size` read
`additional_embedding`) and head (`lm_head` rows then `additional_fc` rows).
vla_jax's family: vla_jax/models/idefics.py; parity of the export: tests/test_export_backbones.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from .base import BackboneAdapter, DecoderCache, build_hf, hf_config, kv_argument


@dataclasses.dataclass
class MediaCache(DecoderCache):
    media: torch.Tensor | None = None  # [B, M, Q, width]: every image the cached slots could read
    last_frame: torch.Tensor | None = None  # long [B]: the image the last cached slot reads (-1 none)


class IdeficsAdapter(BackboneAdapter):
    model_type = "idefics"
    attention = "causal"
    first_position = 0
    cross_attention_media = True

    def __init__(self, backbone: dict[str, Any], dtype: torch.dtype = torch.float32):
        from transformers import IdeficsConfig, IdeficsForVisionText2Text

        config = hf_config(IdeficsConfig, backbone)
        image_token = getattr(config, "image_token_id", None)
        # HF builds "normal" float gates with torch.normal(size=(1)), which torch refuses (an int, not a tuple);
        # the initialiser is irrelevant here (every weight comes from the export), so build with zeros.
        config.alpha_initializer = "zeros"
        self.model = build_hf(IdeficsForVisionText2Text, config, dtype)
        self.extra = int(config.additional_vocab_size)
        self.hidden_size = int(config.hidden_size)
        self.vocab_size = int(config.vocab_size) + self.extra
        vision: Any = config.vision_config
        self.image_size = int(vision.image_size)
        self.kv_values_per_token = 2 * int(config.num_hidden_layers) * int(config.hidden_size)
        self.image_token_id = self.vocab_size - 1 if image_token is None else int(image_token)
        self.decoder = self.model.model
        # IdeficsModel's `perceiver_embeddings` layout: [B, M, Q, W] up to transformers 5.23 (it unpacks four
        # sizes), [B * M, Q, W] from 5.24 (it reads size(1) as the latents); the pyproject allows both.
        import transformers

        major_minor = tuple(int(part) for part in transformers.__version__.split(".")[:2])
        self.perceiver_4d = major_minor < (5, 24)  # 5.24.0.dev0 has the 5.24 layout

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        m = self.model.model
        hidden = m.vision_model(pixel_values=pixels.to(self.dtype)).last_hidden_state
        return m.perceiver_resampler(hidden) if m.config.use_resampler else hidden

    def image_slot_embeds(self, n: int, device=None) -> torch.Tensor:
        """[n, 1, D]: the `<image>` token where a frame goes in the sequence."""
        return self.embed_tokens(torch.full((n, 1), self.image_token_id, dtype=torch.long, device=device))

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    def lm_head_weight(self) -> torch.Tensor:
        head = self.model.lm_head
        return torch.cat([head.weight, head.additional_fc.weight]) if self.extra else head.weight

    def new_cache(self) -> MediaCache:
        from transformers import DynamicCache

        return MediaCache(DynamicCache(config=self.model.config))

    def decode(
        self,
        embeds: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: DecoderCache | None = None,
        positions: torch.Tensor | None = None,
        block_ids: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
        media: torch.Tensor | None = None,
        media_frame: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`BackboneAdapter.decode` plus the media (module docstring); without media (and none cached) every
        slot reads no image (HF with an all-zero image_attention_mask)."""
        b, s = embeds.shape[:2]
        new_mask = torch.ones(b, s, dtype=torch.bool, device=embeds.device) if mask is None else mask.bool()
        if positions is None:
            positions = self.positions_for(new_mask, image_index, cache)
        kept = cache if isinstance(cache, MediaCache) else None
        past = None if kept is None else kept.media
        if media is not None:
            media = media.to(self.dtype)
            media = media if past is None else torch.cat([past, media], dim=1)
        else:
            media = past
        seen = media
        start = torch.full((b,), -1, dtype=torch.long, device=embeds.device)
        if kept is not None and kept.last_frame is not None:
            start = kept.last_frame
        frame = torch.full((b, s), -1, dtype=torch.long, device=embeds.device)
        if media_frame is not None:
            frame = torch.where(new_mask, media_frame.long(), frame)
        reads = torch.cummax(torch.cat([start[:, None], frame], dim=1), dim=1).values[:, 1:]
        if media is None:  # nothing to read: one zero image nobody attends to
            width = self.model.config.vision_config.embed_dim
            media = embeds.new_zeros(b, 1, 1, width)
        m = media.shape[1]
        image_mask = (reads[..., None] == torch.arange(m, device=embeds.device)).long()
        past_mask = None if cache is None else cache.key_mask
        key_mask = new_mask if past_mask is None else torch.cat([past_mask, new_mask], dim=1)
        if getattr(self, "_kv_name", None) is None:
            self._kv_name = kv_argument(self.decoder.forward)
        if not self.model.config.use_resampler:
            given = {"image_encoder_embeddings": media}  # [B, M, Q, W] in every release
        elif self.perceiver_4d:
            given = {"perceiver_embeddings": media}
        else:
            given = {"perceiver_embeddings": media.flatten(0, 1)}
        out = self.decoder(
            inputs_embeds=embeds,
            attention_mask=key_mask,
            position_ids=positions,
            image_attention_mask=image_mask,
            use_cache=cache is not None,
            return_dict=True,
            **given,
            **{self._kv_name: None if cache is None else cache.kv},
        )
        if cache is not None:
            cache.key_mask = key_mask
        if kept is not None:
            kept.media, kept.last_frame = seen, reads[:, -1]
        return out.last_hidden_state
