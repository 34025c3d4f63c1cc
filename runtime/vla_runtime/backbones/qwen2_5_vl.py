"""Qwen2.5-VL (`model_type` "qwen2_5_vl") on transformers' `Qwen2_5_VLForConditionalGeneration`; Qwen2-VL
(`qwen2_vl`) on `Qwen2VLForConditionalGeneration` the same way.

One fixed-size frame per image: the frame is cut into the flat patch rows HF's image processor
makes (patch_size patches, block-major over the spatial_merge_size x spatial_merge_size merge
blocks, each patch repeated temporal_patch_size times: a still image) and run through HF's
`model.visual` with its `grid_thw`; its `pooler_output` (after the 2x2 merger) is the image tokens.
The decoder is HF's Qwen2 text model with 3-D (t, h, w) rotary positions, computed by HF's own
`Qwen2_5_VLModel.get_rope_index` from where the image slots are (`image_index` >= 0); with a KV
cache, new slots continue from the cache's `next_position` (HF's `rope_deltas` rule: the next
position is the largest one so far + 1). Causal attention, no embedding scale; logits: `lm_head`
(tied to the embedding for the 3B model).
"""

from __future__ import annotations

from typing import Any

import torch

from .base import BackboneAdapter, DecoderCache, build_hf, hf_config


class Qwen2_5_VLAdapter(BackboneAdapter):
    model_type = "qwen2_5_vl"
    attention = "causal"
    first_position = 0
    hf_classes = ("Qwen2_5_VLConfig", "Qwen2_5_VLForConditionalGeneration")
    windowed = True  # the tower's window attention: its window index is precomputed too

    def __init__(self, backbone: dict[str, Any], dtype: torch.dtype = torch.float32):
        import transformers

        config_cls, model_cls = (getattr(transformers, name) for name in self.hf_classes)
        self.model = build_hf(model_cls, hf_config(config_cls, backbone), dtype)
        vision = self.model.config.vision_config
        self.set_decoder_facts(self.model.config.text_config, vision)
        self.patch, self.merge, self.temporal = vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size
        self.decoder = self.model.model.language_model
        self._grid_cache: dict[tuple, dict[str, torch.Tensor]] = {}

    def _grid(self, images: int) -> torch.Tensor:
        side = self.image_size // self.patch
        return torch.tensor([[1, side, side]] * images, dtype=torch.long)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        n, c, h, w = pixels.shape
        p, m = self.patch, self.merge
        gh, gw = h // p, w // p
        x = pixels.to(self.dtype).reshape(n, c, gh // m, m, p, gw // m, m, p)
        x = x.permute(0, 2, 5, 3, 6, 1, 4, 7)  # [n, bh, bw, mh, mw, c, ph, pw]: the processor's patch order
        x = x.unsqueeze(6).expand(*x.shape[:6], self.temporal, p, p)  # a still image: identical temporal frames
        flat = x.reshape(n * gh * gw, c * self.temporal * p * p)
        grid = self._grid(n).to(pixels.device)
        tensors = _grid_tensors(self, n, grid)  # pyright: ignore[reportCallIssue]  (torch.compiler.disable's typing)
        out = self.model.model.visual(flat, grid_thw=grid, return_dict=True, **tensors)
        return out.pooler_output.reshape(n, -1, out.pooler_output.shape[-1])

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    def positions_for(
        self, mask: torch.Tensor, image_index: torch.Tensor | None, cache: DecoderCache | None
    ) -> torch.Tensor:
        """[3, B, S] from HF's `get_rope_index` (padding 0), shifted to continue after what the cache holds."""
        b, s = mask.shape
        is_image = torch.zeros_like(mask) if image_index is None else (image_index >= 0) & mask
        images = int((is_image & (image_index == 0)).sum()) if image_index is not None else 0
        token_types = is_image.int()
        positions, _ = self.model.model.get_rope_index(
            torch.zeros(b, s, dtype=torch.long, device=mask.device),  # only shapes are read (types say the rest)
            mm_token_type_ids=token_types,
            image_grid_thw=self._grid(images).to(mask.device) if images else None,
            attention_mask=mask.long(),
        )
        if cache is not None and cache.next_position is not None:
            positions = positions + cache.next_position.to(positions.device)[None, :, None]
        if cache is not None:
            last = torch.where(mask[None], positions, torch.zeros_like(positions)).amax(dim=(0, 2))
            cache.next_position = torch.maximum(
                last + 1, cache.next_position if cache.next_position is not None else last
            )
        return positions

    def lm_head_weight(self) -> torch.Tensor:
        return self.model.lm_head.weight


@torch.compiler.disable  # traced, the helpers' loops would make dynamo give up on the whole tower for good
def _grid_tensors(adapter: Qwen2_5_VLAdapter, images: int, grid: torch.Tensor) -> dict[str, torch.Tensor]:
    """The tower's index tensors for `images` frames, computed once by transformers' own `vision_utils` helpers
    and passed in as their precomputed values: they loop over `grid_thw.tolist()`, which would re-run every step
    and break a `torch.compile` graph apart at each call."""
    key = (images, grid.device)
    if key not in adapter._grid_cache:
        from transformers import vision_utils

        config = adapter.model.model.visual.config
        cu_seqlens, _ = vision_utils.get_vision_attention_seqlens(grid, config)
        tensors = {"position_ids": vision_utils.get_vision_position_ids(grid, adapter.merge), "cu_seqlens": cu_seqlens}
        if adapter.windowed:
            tensors["window_index"], tensors["cu_window_seqlens"] = vision_utils.get_vision_window_index(
                grid, adapter.merge, config.window_size, adapter.patch
            )
        adapter._grid_cache[key] = tensors
    return dict(adapter._grid_cache[key])  # a copy: the tower pops what it uses


class Qwen2VLAdapter(Qwen2_5_VLAdapter):
    """Qwen2-VL (`model_type` "qwen2_vl"): the same calls on `Qwen2VLForConditionalGeneration` (its tower has no
    windows; `visual`, `get_rope_index` and the text model take the same arguments)."""

    model_type = "qwen2_vl"
    hf_classes = ("Qwen2VLConfig", "Qwen2VLForConditionalGeneration")
    windowed = False
