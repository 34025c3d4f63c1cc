"""The Hugging Face torch side of `vla-jax verify-hf`: each family's HF class on its real input path.

`hf_stages(src, inputs, ...)` loads the checkpoint with transformers (float32, eval, CPU),
optionally truncated to the first N layers of both towers, and returns the three stages the
verification compares: the vision tower's last hidden state, the projector output (what the LM
receives per image), and the LM's last hidden state on token ids with the image placeholders
(`image_embeds_position_mask` for Kosmos-2, `image_token_id` for PaliGemma / SmolVLM / LLaVA, plus
PaliGemma's `token_type_ids` prefix). Torch and transformers are imported here only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _truncate(cfg, num_layers: int | None) -> None:
    """Cut a transformers config (in place) to the first `num_layers` vision / text layers."""
    if num_layers is None:
        return
    vision = getattr(cfg, "vision_config", cfg)
    vision.num_hidden_layers = min(num_layers, vision.num_hidden_layers)
    text = getattr(cfg, "text_config", None)
    if text is None:
        return
    key = "layers" if cfg.model_type == "kosmos-2" else "num_hidden_layers"
    setattr(text, key, min(num_layers, getattr(text, key)))
    if getattr(text, "layer_types", None):
        text.layer_types = list(text.layer_types)[: text.num_hidden_layers]


def _load(cls, src: Path, num_layers: int | None, **kwargs):
    import torch
    import transformers

    cfg = transformers.AutoConfig.from_pretrained(src)
    _truncate(cfg, num_layers)
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # truncation leaves the deeper layers' tensors unused: expected
    try:
        model = cls.from_pretrained(src, config=cfg, dtype=torch.float32, **kwargs)
    finally:
        transformers.logging.set_verbosity(level)
    return model.eval()


def _tensors(inputs: dict[str, np.ndarray]):
    import torch

    return {k: torch.from_numpy(np.array(v)) for k, v in inputs.items()}  # writable copies


def kosmos2_stages(src: Path, inputs, num_layers=None) -> dict[str, np.ndarray]:
    from transformers import Kosmos2ForConditionalGeneration

    model = _load(Kosmos2ForConditionalGeneration, src, num_layers)
    return _kosmos2_forward(model, model.vision_model, _tensors(inputs))


def _kosmos2_forward(model, vision, t) -> dict[str, np.ndarray]:
    import torch

    with torch.no_grad():
        tower = vision(pixel_values=t["pixel_values"]).last_hidden_state
        image_embeds = model.get_image_features(t["pixel_values"], return_dict=True).pooler_output
        text = model.text_model.model(
            input_ids=t["input_ids"],
            attention_mask=t["attention_mask"].long(),
            image_embeds=image_embeds,
            image_embeds_position_mask=t["image_mask"].long(),
        ).last_hidden_state
    return {"vision_tower": tower.numpy(), "projector": image_embeds.numpy(), "lm_last_hidden": text.numpy()}


def clip_kosmos2_stages(src: Path, vision_src: Path, config, params, inputs, num_layers=None):
    """Kosmos-2 from `src` with the CLIP tower of `vision_src` swapped in (transformers loads both folders).

    Stage 1 is the CLIPVisionModel itself. The only tensors not from the two HF folders are those
    conversion initialised fresh (the new projection input layer), copied from `params`.
    """
    import torch
    import transformers

    clip = _load(transformers.CLIPVisionModel, vision_src, num_layers)
    model = transformers.Kosmos2ForConditionalGeneration(transformers.Kosmos2Config(**config.to_hf_dict())).eval()
    kosmos = _load(transformers.Kosmos2ForConditionalGeneration, src, num_layers, ignore_mismatched_sizes=True)
    own = {k: v for k, v in kosmos.state_dict().items() if not k.startswith("vision_model.")}
    fresh = {k for k, v in own.items() if v.shape != model.state_dict()[k].shape}
    model.load_state_dict({k: v for k, v in own.items() if k not in fresh}, strict=False)
    model.vision_model.model.load_state_dict(clip.state_dict(), strict=True)
    with torch.no_grad():
        if fresh:  # the new dense layer: ours (kernel [in, out] -> weight [out, in])
            dense = params["image_to_text_projection"]["dense"]
            model.image_to_text_projection.dense.weight.copy_(torch.from_numpy(np.asarray(dense["kernel"]).T.copy()))
            model.image_to_text_projection.dense.bias.copy_(torch.from_numpy(np.asarray(dense["bias"]).copy()))
    out = _kosmos2_forward(model, model.vision_model, _tensors(inputs))
    with torch.no_grad():
        out["vision_tower"] = clip(pixel_values=torch.from_numpy(inputs["pixel_values"])).last_hidden_state.numpy()
    return out


def paligemma_stages(src: Path, inputs, num_layers=None) -> dict[str, np.ndarray]:
    import torch
    from transformers import PaliGemmaForConditionalGeneration

    m = _load(PaliGemmaForConditionalGeneration, src, num_layers).model
    t = _tensors(inputs)
    with torch.no_grad():
        tower = m.vision_tower(t["pixel_values"]).last_hidden_state
        proj = m.get_image_features(t["pixel_values"]).pooler_output  # pyright: ignore  (stubs: tuple | output)
        text = m(
            input_ids=t["input_ids"],
            pixel_values=t["pixel_values"],
            attention_mask=t["attention_mask"].long(),
            token_type_ids=t["token_type_ids"],
        ).last_hidden_state
    assert proj is not None and text is not None  # typed Optional by the output classes; the forward sets them
    return {"vision_tower": tower.numpy(), "projector": proj.numpy(), "lm_last_hidden": text.numpy()}


def smolvlm_stages(src: Path, inputs, num_layers=None) -> dict[str, np.ndarray]:
    import torch
    from transformers import SmolVLMForConditionalGeneration

    m = _load(SmolVLMForConditionalGeneration, src, num_layers).model
    t = _tensors(inputs)
    with torch.no_grad():
        tower = m.vision_model(t["pixel_values"]).last_hidden_state
        proj = m.connector(tower)
        text = m(
            input_ids=t["input_ids"], pixel_values=t["pixel_values"][:, None], attention_mask=t["attention_mask"].long()
        ).last_hidden_state
    return {"vision_tower": tower.numpy(), "projector": proj.numpy(), "lm_last_hidden": text.numpy()}


def llava_stages(src: Path, inputs, num_layers=None) -> dict[str, np.ndarray]:
    """Stage 1 is the selected hidden state (`hidden_states[vision_feature_layer]`, class token included)."""
    import torch
    from transformers import LlavaForConditionalGeneration

    m = _load(LlavaForConditionalGeneration, src, num_layers).model
    t = _tensors(inputs)
    with torch.no_grad():
        hidden = m.vision_tower(t["pixel_values"], output_hidden_states=True).hidden_states
        tower = hidden[m.config.vision_feature_layer]
        proj = torch.stack(list(m.get_image_features(t["pixel_values"]).pooler_output))  # pyright: ignore
        text = m(
            input_ids=t["input_ids"], pixel_values=t["pixel_values"], attention_mask=t["attention_mask"].long()
        ).last_hidden_state
    assert text is not None  # typed Optional by the output class; the forward sets it
    return {"vision_tower": tower.numpy(), "projector": proj.numpy(), "lm_last_hidden": text.numpy()}


def qwen_patches(pixel_values: np.ndarray, vision_config) -> tuple[np.ndarray, np.ndarray]:
    """NCHW normalised images -> HF's flat `pixel_values` [N * patches, C * T * P * P] and `image_grid_thw`,
    cut by the image processor's own `patchify` (no resize, no rescale: the inputs are already normalised)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    proc = Qwen2VLImageProcessorPil()
    flat, grids = [], []
    for image in pixel_values:
        patches, gh, gw = proc.patchify(
            image,
            patch_size=vision_config.patch_size,
            merge_size=vision_config.spatial_merge_size,
            temporal_patch_size=vision_config.temporal_patch_size,
        )
        flat.append(patches)
        grids.append((1, gh, gw))
    return np.concatenate(flat), np.asarray(grids, np.int64)


def qwen2_5_vl_stages(src: Path, inputs, num_layers=None, hf_class: str = "Qwen2_5_VLForConditionalGeneration"):
    """`model.visual` on the processor's patches; the LM through `Qwen2_5_VLModel.forward`'s own 3-D positions
    (`get_rope_index` from `mm_token_type_ids` and `image_grid_thw`). Qwen2-VL: the same calls on its class."""
    import torch
    import transformers

    m = _load(getattr(transformers, hf_class), src, num_layers).model
    flat, grid = qwen_patches(inputs["pixel_values"], m.config.vision_config)
    t = _tensors({"flat": flat, "grid": grid, **inputs})
    n = len(inputs["pixel_values"])
    with torch.no_grad():
        visual = m.visual(t["flat"], grid_thw=t["grid"])
        tower = visual.last_hidden_state.reshape(n, -1, visual.last_hidden_state.shape[-1])
        proj = visual.pooler_output.reshape(n, -1, visual.pooler_output.shape[-1])
        text = m(
            input_ids=t["input_ids"],
            pixel_values=t["flat"],
            image_grid_thw=t["grid"],
            mm_token_type_ids=t["image_mask"].int(),
            attention_mask=t["attention_mask"].long(),
        ).last_hidden_state
    return {"vision_tower": tower.numpy(), "projector": proj.numpy(), "lm_last_hidden": text.numpy()}


def idefics_stages(src: Path, inputs, num_layers=None) -> dict[str, np.ndarray]:
    """Stage 2 is the resampler's output (HF's `image_hidden_states`); the LM stage is `IdeficsModel` on
    token ids with `image_attention_mask` (one image per row) and explicit 0-indexed positions. `--num-layers`
    cuts the LM to whole cross-attention groups, as `IdeficsConfig.truncated` does."""
    import torch
    import transformers

    cfg = transformers.AutoConfig.from_pretrained(src)
    if num_layers is not None:
        k = cfg.cross_layer_interval
        cfg.vision_config.num_hidden_layers = min(num_layers, cfg.vision_config.num_hidden_layers)
        cfg.num_hidden_layers = min(cfg.num_hidden_layers, -(-num_layers // k) * k)
    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        g = transformers.IdeficsForVisionText2Text.from_pretrained(src, config=cfg, dtype=torch.float32).eval()
    finally:
        transformers.logging.set_verbosity(level)
    m = g.model
    t = _tensors(inputs)
    with torch.no_grad():
        tower = m.vision_model(t["pixel_values"]).last_hidden_state
        proj = m.perceiver_resampler(tower) if m.config.use_resampler else tower
        index = t["media_index"]
        text = m(
            input_ids=t["input_ids"],
            attention_mask=t["attention_mask"].long(),
            position_ids=t["position_ids"],
            pixel_values=t["pixel_values"][:, None],
            image_attention_mask=(index[..., None] == 0).long(),
        ).last_hidden_state
    return {"vision_tower": tower.numpy(), "projector": proj.numpy(), "lm_last_hidden": text.numpy()}


STAGES: dict[str, Any] = {
    "kosmos-2": kosmos2_stages,
    "paligemma": paligemma_stages,
    "smolvlm": smolvlm_stages,
    "llava": llava_stages,
    "qwen2_5_vl": qwen2_5_vl_stages,
    "qwen2_vl": lambda src, inputs, num_layers=None: qwen2_5_vl_stages(
        src, inputs, num_layers, "Qwen2VLForConditionalGeneration"
    ),
    "idefics": idefics_stages,
}
