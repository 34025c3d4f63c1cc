"""The PyTorch reference policy: Hugging Face's torch `Kosmos2Model` + an LSTM policy head, as RoboVLMs runs it.

RoboVLMs' Kosmos-2 policy-head model calls the HF vision tower, the image-to-text
projection and the HF text decoder on ``inputs_embeds`` (image latents spliced after
BOS, a learned action token appended), then an ``nn.LSTM`` decoder over the window
and an MLP readout. This module is that computation, written so that it is number
for number the same function as `vla_jax.vla.VLAPolicy` (structure ``policy_head``,
head ``lstm``) - so a step-time ratio compares frameworks, not models:

* weights: the HF model's tensors are converted into our params with
  `vla_jax.convert.hf_checkpoint.load_hf_checkpoint`, and our head's params go the
  other way with `vla_jax.export.mapping.head_state_dict`; both start identical;
* ``nn.LSTM`` has two redundant bias vectors per layer (``bias_ih`` and ``bias_hh``);
  flax's LSTMCell has one, so ``bias_ih`` is a frozen zero here (otherwise torch
  would train twice the bias and the runs would drift apart);
* HF's ``inputs_embeds`` path multiplies by ``embed_scale``; our action token is
  added unscaled, so it enters HF divided by the scale.

Also the loss (RoboVLMs' recipe, `vla_jax.losses.vla_loss`) and AdamW with the same
decay mask as `vla_jax.train.optimizer.decay_mask` (Linear / LSTM weights only).
"""

from __future__ import annotations

import math
import tempfile
from typing import Any

import numpy as np
import torch
from torch import nn

from vla_runtime.policy_io import CLIP_MEAN, CLIP_STD


def hf_config(backbone) -> Any:
    """Our Kosmos2Config -> transformers.Kosmos2Config with every dropout off (both sides deterministic)."""
    from transformers import Kosmos2Config

    d = backbone.to_hf_dict()
    text = {k: v for k, v in d["text_config"].items() if k != "model_type"}
    text.update(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, layerdrop=0.0)
    vision = {k: v for k, v in d["vision_config"].items() if k != "model_type"}
    vision.update(attention_dropout=0.0)
    return Kosmos2Config(text_config=text, vision_config=vision, latent_query_num=d["latent_query_num"])


class TorchLSTMHead(nn.Module):
    """Mirror of `vla_jax.heads.LSTMHead`: Linear -> nn.LSTM over T -> Linear+ReLU -> Linear -> tanh / logit."""

    def __init__(self, feat_dim: int, hidden: int, layers: int, chunk: int, action_dim: int, has_gripper: bool):
        super().__init__()
        self.chunk, self.action_dim, self.has_gripper = chunk, action_dim, has_gripper
        self.input_proj = nn.Linear(feat_dim, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        self.readout_mlp = nn.Linear(hidden, hidden)
        self.readout = nn.Linear(hidden, chunk * action_dim)

    def forward(self, features: torch.Tensor):
        h, _ = self.lstm(self.input_proj(features.float()))
        raw = self.readout(torch.relu(self.readout_mlp(h)))
        raw = raw.reshape(*raw.shape[:-1], self.chunk, self.action_dim)
        if not self.has_gripper:
            return torch.tanh(raw), None
        return torch.tanh(raw[..., :-1]), raw[..., -1]


class TorchPolicy(nn.Module):
    """HF Kosmos2Model + action token + LSTM head: batch (uint8 NHWC images, tokens) -> (arm, gripper logits)."""

    def __init__(self, vla_config, attn_implementation: str | None = None):
        super().__init__()
        from transformers import Kosmos2Model

        self.cfg = vla_config
        bb = vla_config.backbone
        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        self.kosmos = Kosmos2Model._from_config(hf_config(bb), **kwargs)
        d = bb.text.embed_dim
        self.embed_scale = math.sqrt(d) if bb.text.scale_embedding else 1.0
        self.action_token = nn.Parameter(torch.zeros(d))
        self.head = TorchLSTMHead(
            d,
            vla_config.head_hidden_size,
            vla_config.head_layers,
            vla_config.action_chunk,
            vla_config.action_dim,
            vla_config.has_gripper,
        )
        for name, p in self.head.lstm.named_parameters():
            if name.startswith("bias_ih"):
                p.data.zero_()
                p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def image_latents(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 [N, H, W, 3] -> HF image_embeds [N, Q, D] (unscaled), normalised on the device like ours."""
        x = images_uint8.permute(0, 3, 1, 2).float() / 255.0
        x = (x - self.mean) / self.std
        vision = self.kosmos.vision_model(pixel_values=x.to(self.kosmos.dtype))
        feats = self.kosmos.vision_model.model.post_layernorm(vision[0])
        feats = nn.functional.normalize(feats, dim=-1)
        latents, _ = self.kosmos.image_to_text_projection(feats)
        return latents

    def forward(self, image: torch.Tensor, tokens: torch.Tensor):
        b, t = image.shape[:2]
        n = b * t
        latents = self.image_latents(image.reshape(n, *image.shape[2:]))
        text = self.kosmos.text_model.model.embed_tokens(tokens.repeat_interleave(t, dim=0))
        action = (self.action_token / self.embed_scale).to(latents.dtype).expand(n, 1, -1)
        embeds = torch.cat([text[:, :1].to(latents.dtype), latents, text[:, 1:].to(latents.dtype), action], dim=1)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        hidden = self.kosmos.text_model(inputs_embeds=embeds, attention_mask=mask, use_cache=False).last_hidden_state
        feats = hidden[:, -1].reshape(b, t, -1)
        return self.head(feats)


def policy_loss(model: TorchPolicy, image, tokens, action) -> torch.Tensor:
    """`vla_jax.losses.vla_loss` for a full batch (no masks): huber on arm dims + ratio * gripper BCE."""
    cfg = model.cfg
    arm, gripper_logits = model(image, tokens)
    n_arm = arm.shape[-1]
    loss = nn.functional.huber_loss(arm.float(), action[..., :n_arm], delta=cfg.huber_delta)
    if gripper_logits is not None:
        bce = nn.functional.binary_cross_entropy_with_logits(gripper_logits.float(), action[..., -1])
        loss = loss + cfg.gripper_loss_ratio * bce
    return loss


def adamw(model: nn.Module, lr: float, weight_decay: float, b1=0.9, b2=0.999, eps=1e-8) -> torch.optim.AdamW:
    """AdamW with decay only on Linear / LSTM weight matrices (ours: dense ``kernel`` leaves outside embeddings)."""
    decay, no_decay = [], []
    for module in model.modules():
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            is_matrix = (isinstance(module, nn.Linear) and pname == "weight") or (
                isinstance(module, nn.LSTM) and pname.startswith("weight_")
            )
            (decay if is_matrix else no_decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(b1, b2),
        eps=eps,
    )


def make_step(model: TorchPolicy, optimizer, loss_fn=policy_loss, grad_clip: float = 1.0):
    params = [p for p in model.parameters() if p.requires_grad]

    def step(image, tokens, action):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, image, tokens, action)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        return loss.detach()

    return step


def trainable_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def build_matched(vla_config, seed: int = 0, attn_implementation: str | None = None):
    """-> (TorchPolicy, our float32 params) holding the same numbers.

    The HF torch model is the source: saved with save_pretrained, read back by our converter
    (the path a user's checkpoint takes), the head initialised by flax and copied into torch.
    """
    import jax
    from flax import traverse_util

    from vla_jax.convert.hf_checkpoint import load_hf_checkpoint
    from vla_jax.export.mapping import head_state_dict
    from vla_jax.vla import init_policy

    torch.manual_seed(seed)
    model = TorchPolicy(vla_config, attn_implementation)
    with tempfile.TemporaryDirectory() as tmp:
        model.kosmos.save_pretrained(tmp, safe_serialization=True)
        _, backbone = load_hf_checkpoint(
            tmp, dtype=vla_config.backbone.dtype, scan_layers=vla_config.backbone.scan_layers
        )
    params = jax.device_get(init_policy(vla_config, seed, instruction_length=4))
    params = dict(params)
    ours = traverse_util.flatten_dict(params["backbone"])
    theirs = traverse_util.flatten_dict(backbone)
    if set(ours) != set(theirs):
        raise RuntimeError(f"converted backbone keys differ from the policy's: {sorted(set(ours) ^ set(theirs))[:5]}")
    params["backbone"] = jax.tree.map(np.asarray, backbone)
    head = head_state_dict("lstm", params["head"], {"head_layers": vla_config.head_layers})
    sd = {
        "input_proj.weight": head["input_proj.weight"],
        "input_proj.bias": head["input_proj.bias"],
        "readout_mlp.weight": head["readout_mlp.dense_0.weight"],
        "readout_mlp.bias": head["readout_mlp.dense_0.bias"],
        "readout.weight": head["readout.out.weight"],
        "readout.bias": head["readout.out.bias"],
    }
    for i in range(vla_config.head_layers):
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            sd[f"lstm.{kind}_l{i}"] = head[f"lstm.layer_{i}.{kind}"]
    model.head.load_state_dict(sd, strict=True)
    with torch.no_grad():
        model.action_token.copy_(torch.from_numpy(np.asarray(params["action_token"], np.float32)))
    return model, params
