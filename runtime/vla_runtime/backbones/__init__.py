"""Backbone adapters, one file per family, keyed by Hugging Face `model_type` (the export's `backbone.model_type`).

Each wraps transformers' own torch class; see base.py for the interface the structures use.
Families are imported on first use, so listing them costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from ..errors import RuntimeConfigError
from .base import BackboneAdapter, DecoderCache

# model_type -> "module:class" inside this package.
FAMILIES = {
    "kosmos-2": "kosmos2:Kosmos2Adapter",
    "paligemma": "paligemma:PaliGemmaAdapter",
    "smolvlm": "smolvlm:SmolVLMAdapter",
    "qwen2_5_vl": "qwen2_5_vl:Qwen2_5_VLAdapter",
    "qwen2_vl": "qwen2_5_vl:Qwen2VLAdapter",
    "llava": "llava:LlavaAdapter",
    "idefics": "idefics:IdeficsAdapter",
}
SUPPORTED = tuple(FAMILIES)

__all__ = ["FAMILIES", "SUPPORTED", "BackboneAdapter", "DecoderCache", "adapter_class", "build_backbone"]


def adapter_class(model_type: Any) -> type:
    if model_type not in FAMILIES:
        raise RuntimeConfigError(
            f"config.json backbone.model_type {model_type!r} is not supported by this "
            f"vla-runtime; it runs {', '.join(SUPPORTED)} (upgrade vla-runtime or re-export)"
        )
    module, name = FAMILIES[model_type].split(":")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def build_backbone(backbone: dict[str, Any], dtype: torch.dtype = torch.float32) -> BackboneAdapter:
    """The export's `backbone` dict (HF config.json layout with `model_type`) -> the family's adapter."""
    return adapter_class(backbone.get("model_type"))(backbone, dtype)
