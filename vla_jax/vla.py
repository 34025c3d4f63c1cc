"""The four RoboVLMs policy structures on any backbone of `vla_jax.models.backbone`.

``VLAPolicy(config)(batch, deterministic)`` takes the batch of docs/design.md
(``image`` uint8 [B, T, H, W, 3], ``image_mask`` [B, T], ``tokens`` /
``token_mask`` [B, L]; ``action`` [B, T, C, A] only for the discrete teacher
forcing) and returns

    {"action": f32 [B, T, C, A]          normalised units; gripper dim = probability,
     "gripper_logits": f32 [B, T, C]     with a gripper,
     "action_logits": f32 [B, T, C, A, num_bins]   one_step_discrete only}

Outputs at steps whose ``image_mask`` is false are zero.

Exact sequence layout (the torch runtime reproduces this; Q = latent_query_num)
----------------------------------------------------------------------------
Images: uint8 -> float /255 -> (x - backbone.image_mean) / backbone.image_std, NHWC, then
``backbone.encode_images`` -> Q = ``backbone.image_tokens`` vectors in the space of
``backbone.embed_tokens`` (the backbone interface's one input space).

One frame's block, left to right:

    tokens[:k]  [<image>]  image latents (Q)  [</image>]  tokens[k:]  tail

with ``k = image_insert_index`` (default 1: after BOS, as Kosmos-2's
``<s><image>..</image> text`` and RoboVLMs for every backbone; the brackets are
the optional ``image_bracket_tokens`` ids, embedded with the token embedding).
Padded text entries (``token_mask`` false) are REMOVED, not masked in place:
valid entries are packed to the front in order (padding goes to the end and is
masked), so a block is the same however long the padding was. Positions are
``backbone.first_position + index`` over the packed sequence (HF's
``inputs_embeds`` path of each family), unless the backbone's
``sequence_positions`` gives its own (Qwen2.5-VL's 3-D multimodal positions,
computed from where the image slots are).

Cross-attention backbones (``cross_attention_media``: IDEFICS / Flamingo): the frame's block holds
ONE slot, the embedded ``image_token_id`` (``<image>``), where the latents go above; the latents
are the media the LM's gated cross-attention layers read. Every slot reads the latest valid image
slot at or before it (per frame: its own frame; interleaved: block t's slots from its ``<image>``
on read frame t, the slots before it frame t-1's), slots before the first image read none (HF's
``image_attention_mask`` as the IDEFICS processor builds it).

Attention: causal, plus for ``backbone.attention == "prefix_lm"`` (PaliGemma) a
bidirectional prefix: every slot of a block except its tail shares the block's
``block_ids`` group (0 per frame; t for block t of the interleaved sequence),
the tail is causal (-1), see `vla_jax.models.attention.decoder_mask`.

Tails and what is read out:

- ``one_step_continuous``: tail = [action_token] (a learned vector, added
  unscaled, zero-initialised as RoboVLMs). Each step t is its own sequence
  (frames folded into the batch); the LM hidden state at the action token goes
  through the MLP head. Every step predicts from its current frame only, which
  is RoboVLMs' one-step policy applied at each step of the window (with
  window_size 1 it is exactly RoboVLMs).
- ``one_step_discrete``: tail = the C*A action tokens of the target chunk
  (chunk-major: c0a0, c0a1, ..., token ids from `vla_jax.actions`), teacher
  forced when ``action`` is in the batch. The logits for token j are the LM
  head's last ``num_bins`` columns at the slot just before it (the last text
  token for j=0). Without ``action`` the tokens are decoded greedily (argmax),
  one full forward per token. Per step as above.
  With ``discrete_decoding="parallel"`` the tail is instead the C*A learned
  ``action_queries`` vectors (zero-initialised, added unscaled as the action
  token) and token j's logits are read at query slot j itself: ONE decoder pass
  gives every token, with the same causal attention (query j sees the prefix and
  queries < j, never a predicted token), so training and the robot step agree
  without teacher forcing (the placeholder idea of OpenVLA-OFT's parallel
  decoding, here with the causal mask unchanged).
- ``interleaved``: ONE causal sequence per sample: the blocks of steps 0..T-1,
  each with tail [action_token], concatenated; blocks of invalid frames
  (``image_mask`` false) are removed like padding. The hidden state at each
  block's action token goes through the MLP head (history comes from the LM).
  With ``interleaved_attention="streaming"`` the attention is `streaming_mask`: a block's
  slots see their own block only, its action token also every earlier block's image and
  text slots (never another action token). A block's hidden states then depend on that
  block alone, so a robot step decodes the newest block and its action token over the
  cached keys of the earlier ones; rotary positions only (``relative_positions``).
- ``policy_head``: per-frame sequences as in one_step_continuous; the action-
  token features [B, T, D] are fused over the window by the head (LSTM / GPT /
  MLP over the last window_size steps), see `vla_jax.heads`.

Parameters: ``backbone`` (the family's module, names as its mapping table),
``action_token`` [D] (continuous structures), ``action_queries`` [C*A, D]
(parallel discrete decoding) and ``head`` (see heads.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vla_jax import actions as act
from vla_jax import heads as heads_lib
from vla_jax.errors import VLAJaxError
from vla_jax.losses import vla_loss  # noqa: F401  (the Policy seam: vla_jax.vla.vla_loss)
from vla_jax.models import backbone as backbone_lib
from vla_runtime.policy_io import Preprocessing, scale_pixels

STRUCTURES = ("one_step_continuous", "one_step_discrete", "interleaved", "policy_head")
DISCRETE_DECODINGS = ("autoregressive", "parallel")
INTERLEAVED_ATTENTIONS = ("causal", "streaming")
HEADS_FOR_STRUCTURE = {
    "one_step_continuous": ("mlp",),
    "one_step_discrete": ("discrete",),
    "interleaved": ("mlp",),
    "policy_head": ("lstm", "gpt", "mlp"),
}


@dataclasses.dataclass(frozen=True)
class VLAConfig:
    """A policy = backbone + structure + head. Defaults: RoboVLMs' best CALVIN model
    (Kosmos-2, policy head, LSTM 4x1024, window 16, chunk 10, 7-D arm+gripper)."""

    backbone: Any = dataclasses.field(default_factory=backbone_lib.default_config)
    structure: str = "policy_head"
    head: str = "lstm"
    window_size: int = 16
    action_chunk: int = 10
    action_dim: int = 7
    has_gripper: bool = True
    head_hidden_size: int = 1024
    head_layers: int = 4
    head_heads: int = 8  # GPT head attention heads
    head_dropout: float = 0.0
    tanh_actions: bool = True
    num_bins: int = act.DEFAULT_NUM_BINS
    # one_step_discrete only: "autoregressive" (RoboVLMs: token j conditioned on tokens < j, C*A decoder
    # passes at inference) or "parallel" (learned query slots, one pass; module docstring)
    discrete_decoding: str = "autoregressive"
    # interleaved only: "causal" (RoboVLMs: every slot sees the window before it) or "streaming" (a block's
    # slots see their own block only, its action token also every earlier block's image + text: a robot step
    # then decodes one block and one token over cached keys; module docstring)
    interleaved_attention: str = "causal"
    mu_law: float = 0.0
    image_insert_index: int = 1
    image_bracket_tokens: tuple[int, int] | None = None
    loss_type: str = "huber"
    huber_delta: float = 1.0
    gripper_loss_ratio: float = 0.01

    def __post_init__(self):
        def bad(msg):
            raise VLAJaxError(f"VLA config: {msg}")

        if self.structure not in STRUCTURES:
            bad(f"structure={self.structure!r} is unknown; use one of {', '.join(STRUCTURES)}")
        allowed = HEADS_FOR_STRUCTURE[self.structure]
        if self.head not in allowed:
            bad(
                f"head={self.head!r} does not fit structure={self.structure!r}; use head in {allowed}"
                + (" (the discrete head needs structure='one_step_discrete')" if self.head == "discrete" else "")
            )
        for name in ("window_size", "action_chunk", "action_dim", "head_hidden_size", "head_layers", "head_heads"):
            if int(getattr(self, name)) < 1:
                bad(f"{name}={getattr(self, name)} must be >= 1")
        if self.has_gripper and self.action_dim < 2:
            bad(f"has_gripper=True needs action_dim >= 2 (arm dims + gripper), got {self.action_dim}")
        if self.head == "gpt" and self.head_hidden_size % self.head_heads:
            bad(f"head_hidden_size={self.head_hidden_size} must be divisible by head_heads={self.head_heads}")
        if self.discrete_decoding not in DISCRETE_DECODINGS:
            bad(f"discrete_decoding={self.discrete_decoding!r} is unknown; use one of {', '.join(DISCRETE_DECODINGS)}")
        if self.discrete_decoding == "parallel" and self.structure != "one_step_discrete":
            bad(
                f"discrete_decoding='parallel' decodes action tokens; structure={self.structure!r} has none "
                "(use structure='one_step_discrete', or leave discrete_decoding at 'autoregressive')"
            )
        if self.interleaved_attention not in INTERLEAVED_ATTENTIONS:
            bad(
                f"interleaved_attention={self.interleaved_attention!r} is unknown; use one of "
                f"{', '.join(INTERLEAVED_ATTENTIONS)}"
            )
        if self.interleaved_attention == "streaming" and self.structure != "interleaved":
            bad(
                f"interleaved_attention='streaming' is the interleaved window's attention; structure="
                f"{self.structure!r} has no window sequence (use structure='interleaved', or leave it at 'causal')"
            )
        if self.loss_type not in ("huber", "mse"):
            bad(f"loss_type={self.loss_type!r}; use 'huber' or 'mse'")
        if self.image_insert_index < 0:
            bad(f"image_insert_index={self.image_insert_index} must be >= 0")
        if not isinstance(self.backbone, backbone_lib.BackboneConfig):
            bad(f"backbone must be a backbone config (vla_jax.models.backbone), got {type(self.backbone).__name__}")
        if self.streaming_attention:
            self._check_streaming(bad)
        vocab = self.backbone.vocab_size
        if self.structure == "one_step_discrete":
            act.ActionTokenizer(vocab, self.num_bins, self.mu_law, self.has_gripper)
        if self.image_bracket_tokens is not None:
            ids = tuple(int(i) for i in self.image_bracket_tokens)
            if len(ids) != 2 or not all(0 <= i < vocab for i in ids):
                bad(f"image_bracket_tokens={self.image_bracket_tokens} must be two token ids < vocab_size={vocab}")
            object.__setattr__(self, "image_bracket_tokens", ids)

    def _check_streaming(self, bad) -> None:
        bb = self.backbone
        if getattr(bb, "cross_attention_media", False):
            bad(
                f"interleaved_attention='streaming' needs a self-attention backbone; {bb.model_type!r} reads the "
                "images by cross-attention, where a block's first slots read the previous frame (use 'causal')"
            )
        if not bb.relative_positions:
            bad(
                f"interleaved_attention='streaming' needs rotary (relative) positions, so a cached block's keys "
                f"stay valid as the window slides; {bb.model_type!r} adds absolute position embeddings "
                "(use 'causal', or a RoPE backbone: paligemma, llava, smolvlm, qwen2_vl, qwen2_5_vl)"
            )

    @property
    def streaming_attention(self) -> bool:
        return self.structure == "interleaved" and self.interleaved_attention == "streaming"

    @property
    def parallel_decoding(self) -> bool:
        return self.structure == "one_step_discrete" and self.discrete_decoding == "parallel"

    @property
    def action_tokenizer(self) -> act.ActionTokenizer:
        return act.ActionTokenizer(self.backbone.vocab_size, self.num_bins, self.mu_law, self.has_gripper)

    def replace(self, **overrides) -> VLAConfig:
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["backbone"] = self.backbone.to_dict()  # with its model_type
        if d["image_bracket_tokens"] is not None:
            d["image_bracket_tokens"] = list(d["image_bracket_tokens"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VLAConfig:
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise VLAJaxError(f"VLA config: unknown keys {unknown}; known keys are {sorted(known)}")
        if isinstance(d.get("backbone"), dict):
            d["backbone"] = backbone_lib.config_from_dict(d["backbone"])
        if d.get("image_bracket_tokens") is not None:
            d["image_bracket_tokens"] = tuple(d["image_bracket_tokens"])
        return cls(**d)


def image_preprocessing(
    config: VLAConfig, resize_mode: str = "resize", input_channel_order: str = "RGB"
) -> Preprocessing:
    """The policy_io.Preprocessing of this model: the backbone's image size and mean/std (`normalize_images`)."""
    bb = config.backbone
    return Preprocessing(
        image_size=(bb.image_size, bb.image_size),
        resize_mode=resize_mode,
        mean=tuple(bb.image_mean),
        std=tuple(bb.image_std),
        input_channel_order=input_channel_order,
    )


def normalize_images(images: jax.Array, preprocessing: Preprocessing) -> jax.Array:
    """uint8 [..., H, W, 3] -> float32 scaled with `preprocessing`'s mean/std (policy_io.scale_pixels).

    Done on device: images travel as uint8. The policy passes `image_preprocessing(config)`, the
    object the export writes, so training and serving use the same numbers for every family."""
    mean, std = (jnp.asarray(v, jnp.float32) for v in (preprocessing.mean, preprocessing.std))
    return scale_pixels(images.astype(jnp.float32), mean, std)


def pack(embeds: jax.Array, valid: jax.Array, groups: jax.Array | None = None):
    """Move the valid entries of each row to the front, keeping their order.

    -> (packed embeds [N, S, D], packed valid [N, S], new index of every original slot [N, S],
    packed block ids [N, S]: ``groups`` moved alike, -1 on padding; None without ``groups``).
    """
    order = pack_order(valid)
    new_index = jnp.cumsum(valid, axis=1) - 1
    packed_valid = jnp.take_along_axis(valid, order, axis=1)
    block_ids = None
    if groups is not None:
        block_ids = jnp.where(packed_valid, jnp.take_along_axis(groups, order, axis=1), -1)
    return select_slots(embeds, order), packed_valid, new_index, block_ids


def streaming_mask(valid: jax.Array, block: int) -> jax.Array:
    """The streaming interleaved window's query-key mask over the PACKED slots, bool [R, S, S] (True = may
    attend; `decode` ANDs it with causality and the prefix-LM blocks). `valid` [R, S] unpacked, blocks of
    `block` slots, each ending in its action token.

    A slot sees the slots of its own block; an action token also sees every other block's image and text
    slots, never another action token. So a block's hidden states at every layer depend on that block alone,
    and a robot step computes the newest block once and its action token over the cached keys of the window's
    blocks (vla_runtime's streaming step): nothing cached goes stale when the window slides, given positions
    that enter as rotations only (`BackboneConfig.relative_positions`)."""
    order = pack_order(valid)
    slot = jnp.arange(valid.shape[1])
    frame = jnp.take_along_axis(jnp.broadcast_to(slot // block, valid.shape), order, axis=1)
    action = jnp.take_along_axis(jnp.broadcast_to(slot % block == block - 1, valid.shape), order, axis=1)
    same = frame[:, :, None] == frame[:, None, :]
    history = action[:, :, None] & ~action[:, None, :]
    keys = jnp.take_along_axis(valid, order, axis=1)[:, None, :]
    return (same | history) & keys


def pack_order(valid: jax.Array) -> jax.Array:
    """Slot order of `pack`: valid slots first, each group in its original order."""
    return jnp.argsort(~valid, axis=1, stable=True)


def select_slots(x: jax.Array, index: jax.Array) -> jax.Array:
    """``x[n, index[n, k]]`` for x [N, S, D], index [N, K] -> [N, K, D], exactly.

    A one-hot matmul instead of a gather: a gather's gradient is a scatter-add, which XLA runs
    several times slower than this small batched matmul on CPU (bench/RESULTS.md section 1: the
    train-step benchmark went from 3.72 s to 1.85-2.05 s per step with it; not measured on TPU/GPU).
    One nonzero per row keeps it exact.
    """
    one_hot = jax.nn.one_hot(index, x.shape[1], dtype=x.dtype)
    return jnp.einsum("nks,nsd->nkd", one_hot, x, precision=jax.lax.Precision.HIGHEST)


def make_head(cfg: VLAConfig) -> nn.Module:
    """The head module of `cfg`; its params are the policy's ``params["head"]``."""
    common: dict[str, Any] = dict(
        action_chunk=cfg.action_chunk,
        action_dim=cfg.action_dim,
        has_gripper=cfg.has_gripper,
        hidden=cfg.head_hidden_size,
        layers=cfg.head_layers,
        dropout=cfg.head_dropout,
        tanh_actions=cfg.tanh_actions,
    )
    if cfg.head == "mlp":
        history = cfg.window_size if cfg.structure == "policy_head" else 1
        return heads_lib.MLPHead(history=history, **common)
    if cfg.head == "lstm":
        return heads_lib.LSTMHead(**common)
    if cfg.head == "gpt":
        return heads_lib.GPTHead(window_size=cfg.window_size, heads=cfg.head_heads, **common)
    return heads_lib.DiscreteTokenHead(cfg.num_bins)


class VLAPolicy(nn.Module):
    """``apply({"params": p}, batch, deterministic)`` -> outputs (module docstring). Training with
    dropout (``deterministic=False``) needs ``rngs={"dropout": key}``."""

    config: VLAConfig

    def setup(self):
        cfg = self.config
        self.backbone = backbone_lib.build(cfg.backbone)
        d = cfg.backbone.hidden_size
        if cfg.structure != "one_step_discrete":
            self.action_token = self.param("action_token", nn.initializers.zeros, (d,), jnp.float32)
        if cfg.parallel_decoding:
            shape = (cfg.action_chunk * cfg.action_dim, d)
            self.action_queries = self.param("action_queries", nn.initializers.zeros, shape, jnp.float32)
        self.head = make_head(cfg)

    # -- sequence building ------------------------------------------------------------------------
    def frame_blocks(self, image_embeds, text_embeds, token_mask, tail, tail_valid):
        """Unpacked blocks [N, S, D], valid [N, S], prefix-LM groups [N, S] or None, image index [N, S] (each
        image slot's index inside the image, -1 elsewhere); tail [N, K, D]. Layout in the module docstring."""
        cfg = self.config
        n = image_embeds.shape[0]
        k = min(cfg.image_insert_index, text_embeds.shape[1])
        image = [image_embeds]
        if cfg.image_bracket_tokens is not None:
            brackets = self.backbone.embed_tokens(jnp.asarray([cfg.image_bracket_tokens], jnp.int32))
            brackets = jnp.broadcast_to(brackets, (n, 2, brackets.shape[-1])).astype(image_embeds.dtype)
            image = [brackets[:, :1], image_embeds, brackets[:, 1:]]
        image = jnp.concatenate(image, axis=1)
        dt = image.dtype
        embeds = jnp.concatenate(
            [text_embeds[:, :k].astype(dt), image, text_embeds[:, k:].astype(dt), tail.astype(dt)], axis=1
        )
        ones = jnp.ones((n, image.shape[1]), bool)
        valid = jnp.concatenate([token_mask[:, :k], ones, token_mask[:, k:], tail_valid], axis=1)
        image_index = jnp.full(valid.shape, -1, jnp.int32)
        first = k + (cfg.image_bracket_tokens is not None)
        image_index = image_index.at[:, first : first + image_embeds.shape[1]].set(jnp.arange(image_embeds.shape[1]))
        groups = None
        if cfg.backbone.attention == "prefix_lm":  # everything but the tail: one bidirectional block
            tail_len = tail.shape[1]
            groups = jnp.broadcast_to(
                jnp.where(jnp.arange(valid.shape[1]) < valid.shape[1] - tail_len, 0, -1), valid.shape
            )
        return embeds, valid, groups, image_index

    def packed_positions(self, valid, image_index):
        """The backbone's position ids of the unpacked slots, moved as `pack` moves the slots (None: decode's
        default, first_position + packed index, what every 1-D-position family uses)."""
        positions = self.backbone.sequence_positions(valid, image_index)
        if positions is None:
            return None
        order = pack_order(valid)
        return jnp.take_along_axis(positions, jnp.broadcast_to(order, positions.shape), axis=-1)

    def _prefix_inputs(self, batch):
        """Per-frame image latents [B*T, Q, D], the text repeated per frame, and the cross-attention media
        (None; for a cross-attention backbone the media [B*T, Q, width], the latents one <image> slot)."""
        images = batch["image"]
        b, t = images.shape[:2]
        pixels = normalize_images(images.reshape(b * t, *images.shape[2:]), image_preprocessing(self.config))
        image_embeds, media = self.backbone.encode_images(pixels), None
        if getattr(self.config.backbone, "cross_attention_media", False):
            media = image_embeds
            image_embeds = self.backbone.embed_tokens(jnp.full((b * t, 1), self.config.backbone.image_token_id))
        tokens = jnp.repeat(batch["tokens"], t, axis=0)
        token_mask = jnp.repeat(batch["token_mask"].astype(bool), t, axis=0)
        return image_embeds, self.backbone.embed_tokens(tokens), token_mask, media

    def media_kwargs(self, media, valid, image_index, frames: int = 1) -> dict:
        """`decode`'s media arguments for a cross-attention backbone ({} otherwise): media [R, frames, Q, width]
        and, per packed slot, the frame of the latest valid image slot at or before it (-1: none yet).
        `valid` / `image_index` [R, S] unpacked, `frames` equal blocks per row (interleaved: T)."""
        if media is None:
            return {}
        r, s = valid.shape
        block = jnp.arange(s) // (s // frames)
        index = jax.lax.cummax(jnp.where((image_index >= 0) & valid, block[None], -1), axis=1)
        index = jnp.take_along_axis(index, pack_order(valid), axis=1)
        return {"media": media.reshape(r, frames, *media.shape[1:]), "media_index": index}

    def _action_token_tail(self, n):
        return jnp.broadcast_to(self.action_token, (n, 1, self.action_token.shape[0])), jnp.ones((n, 1), bool)

    # -- structures -------------------------------------------------------------------------------
    def per_frame_features(self, batch, deterministic=True):
        """Each frame its own sequence with an action token -> hidden at the token, [B, T, D]."""
        b, t = batch["image"].shape[:2]
        image_embeds, text_embeds, token_mask, media = self._prefix_inputs(batch)
        tail, tail_valid = self._action_token_tail(b * t)
        embeds, valid, groups, image_index = self.frame_blocks(image_embeds, text_embeds, token_mask, tail, tail_valid)
        packed, packed_valid, new_index, block_ids = pack(embeds, valid, groups)
        positions = self.packed_positions(valid, image_index)
        media_args = self.media_kwargs(media, valid, image_index)
        hidden = self.backbone.decode(
            packed, packed_valid, deterministic, positions=positions, block_ids=block_ids, **media_args
        )
        idx = new_index[:, -1]
        feats = select_slots(hidden, idx[:, None])[:, 0]
        return feats.reshape(b, t, -1)

    def interleaved_features(self, batch, deterministic=True):
        """All T blocks in one causal sequence -> hidden at each block's action token, [B, T, D]."""
        b, t = batch["image"].shape[:2]
        frame_valid = _frame_valid(batch)
        image_embeds, text_embeds, token_mask, media = self._prefix_inputs(batch)
        tail, tail_valid = self._action_token_tail(b * t)
        embeds, valid, groups, image_index = self.frame_blocks(image_embeds, text_embeds, token_mask, tail, tail_valid)
        s = embeds.shape[1]
        valid = valid & frame_valid.reshape(b * t, 1)
        embeds = embeds.reshape(b, t * s, -1)
        if groups is not None:  # block t's prefix is group t: bidirectional inside a frame, causal across
            groups = jnp.where(groups >= 0, jnp.arange(b * t)[:, None] % t, -1).reshape(b, t * s)
        packed, packed_valid, new_index, block_ids = pack(embeds, valid.reshape(b, t * s), groups)
        positions = self.packed_positions(valid.reshape(b, t * s), image_index.reshape(b, t * s))
        media_args = self.media_kwargs(media, valid.reshape(b, t * s), image_index.reshape(b, t * s), t)
        mask = packed_valid
        if self.config.streaming_attention:
            window = self.config.backbone.sliding_window
            if window is not None and t * s > window:
                raise VLAJaxError(
                    f"VLA config: interleaved_attention='streaming' with a sliding-window backbone needs the window's "
                    f"sequence ({t} blocks x {s} slots = {t * s}) within its sliding_window={window}: the streaming "
                    "step's cached keys are exact only where no layer drops any (shorten window_size, or use 'causal')"
                )
            mask = streaming_mask(valid.reshape(b, t * s), s)
        hidden = self.backbone.decode(
            packed, mask, deterministic, positions=positions, block_ids=block_ids, **media_args
        )
        action_slots = jnp.arange(t) * s + (s - 1)
        idx = jnp.clip(new_index[:, action_slots], 0, t * s - 1)  # invalid blocks: any slot, zeroed later
        return select_slots(hidden, idx)

    def discrete_logits(self, batch, deterministic=True):
        """-> action logits [B, T, C, A, bins]: teacher forced, or greedy without batch["action"]; with parallel
        decoding one pass over the query slots either way (the targets are never an input)."""
        cfg = self.config
        b, t = batch["image"].shape[:2]
        n, ca = b * t, cfg.action_chunk * cfg.action_dim
        tok = cfg.action_tokenizer
        image_embeds, text_embeds, token_mask, media = self._prefix_inputs(batch)

        def logits_at_tail(tail, shift):  # tail [N, CA, D] -> logits [N, CA, bins] read `shift` slots before each
            embeds, valid, groups, image_index = self.frame_blocks(
                image_embeds, text_embeds, token_mask, tail, jnp.ones((n, ca), bool)
            )
            packed, packed_valid, new_index, block_ids = pack(embeds, valid, groups)
            positions = self.packed_positions(valid, image_index)
            media_args = self.media_kwargs(media, valid, image_index)
            hidden = self.backbone.decode(
                packed, packed_valid, deterministic, positions=positions, block_ids=block_ids, **media_args
            )
            hidden = select_slots(hidden, new_index[:, -ca:] - shift)
            return self.head(hidden, self.backbone.lm_logits)

        def logits_for(action_ids):  # [N, CA] -> [N, CA, bins]; token j read at the slot before it
            return logits_at_tail(self.backbone.embed_tokens(action_ids), 1)

        if cfg.parallel_decoding:
            logits = logits_at_tail(jnp.broadcast_to(self.action_queries, (n, *self.action_queries.shape)), 0)
        elif "action" in batch:
            ids = tok.encode(batch["action"].astype(jnp.float32)).reshape(n, ca)
            logits = logits_for(ids)
        elif self.is_initializing():  # params must exist before the decode loop can use them
            logits = logits_for(jnp.full((n, ca), act.action_token_offset(tok.vocab_size, tok.num_bins), jnp.int32))
        else:
            offset = act.action_token_offset(cfg.backbone.vocab_size, cfg.num_bins)

            def body(mdl, carry):
                j, ids, logits = carry
                step_logits = logits_for(ids)[:, j]
                ids = ids.at[:, j].set(jnp.argmax(step_logits, -1).astype(jnp.int32) + offset)
                return j + 1, ids, logits.at[:, j].set(step_logits)

            init = (0, jnp.full((n, ca), offset, jnp.int32), jnp.zeros((n, ca, cfg.num_bins), jnp.float32))
            _, _, logits = nn.while_loop(lambda mdl, c: c[0] < ca, body, self, init)
        return logits.reshape(b, t, cfg.action_chunk, cfg.action_dim, cfg.num_bins)

    # -- the policy -------------------------------------------------------------------------------
    def __call__(self, batch, deterministic=True):
        cfg = self.config
        frame_valid = _frame_valid(batch)
        if cfg.structure == "one_step_discrete":
            logits = self.discrete_logits(batch, deterministic)
            out = {"action_logits": logits, "action": cfg.action_tokenizer.from_bins(jnp.argmax(logits, -1))}
            if cfg.has_gripper:
                out["gripper_logits"] = _gripper_logits_from_bins(cfg, logits[..., -1, :])
        else:
            if cfg.structure == "interleaved":
                feats = self.interleaved_features(batch, deterministic)
            else:
                feats = self.per_frame_features(batch, deterministic)
            out = self.head(feats.astype(jnp.float32), frame_valid, deterministic=deterministic)
            if self.is_initializing():
                # Continuous heads never read the LM head, but the backbone's params are a whole HF checkpoint
                # (export writes every tensor of the family's table; an untied lm_head, e.g. SmolVLM's, too).
                self.backbone.lm_logits(feats[:1, :1])
        return {k: _zero_invalid(v, frame_valid) for k, v in out.items()}


def _frame_valid(batch):
    b, t = batch["image"].shape[:2]
    if "image_mask" not in batch:
        return jnp.ones((b, t), bool)
    return batch["image_mask"].astype(bool)


def _zero_invalid(x, frame_valid):
    mask = frame_valid.reshape(frame_valid.shape + (1,) * (x.ndim - 2))
    return jnp.where(mask, x, jnp.zeros_like(x))


def _gripper_logits_from_bins(cfg: VLAConfig, logits):
    """log P(gripper > 0.5) - log P(gripper <= 0.5) from the gripper's bin distribution."""
    bins = jnp.broadcast_to(jnp.arange(cfg.num_bins)[:, None], (cfg.num_bins, cfg.action_dim))
    opening = cfg.action_tokenizer.from_bins(bins)[:, -1]  # [num_bins], gripper value of each bin
    hi = opening > 0.5
    neg = jnp.finfo(jnp.float32).min
    return jax.nn.logsumexp(jnp.where(hi, logits, neg), -1) - jax.nn.logsumexp(jnp.where(hi, neg, logits), -1)


def init_policy(
    config: VLAConfig,
    rng: jax.Array | int = 0,
    batch: dict | None = None,
    *,
    backbone_params: dict | None = None,
    image_size: int | None = None,
    instruction_length: int = 8,
    compiler_options: dict | None = None,
) -> dict:
    """Random float32 params for `config`.

    With ``backbone_params`` (e.g. converted from Hugging Face by `vla_jax.convert`) only the
    action token and the head are created, and the backbone is not traced at all (fast).
    Otherwise the whole policy is initialised on ``batch`` (a dummy batch when None).
    ``compiler_options``: for the init's jax.jit (tests pass the fast-compile options).
    """
    if isinstance(rng, int):
        rng = jax.random.PRNGKey(rng)
    if backbone_params is not None:
        d = config.backbone.hidden_size
        params: dict[str, Any] = {"backbone": backbone_params}
        if config.parallel_decoding:
            params["action_queries"] = jnp.zeros((config.action_chunk * config.action_dim, d), jnp.float32)
        if config.structure != "one_step_discrete":
            params["action_token"] = jnp.zeros((d,), jnp.float32)
            t = config.window_size
            head = make_head(config)
            init_head = jax.jit(
                lambda r: head.init(r, jnp.zeros((1, t, d)), jnp.ones((1, t), bool))["params"],
                compiler_options=compiler_options,
            )
            params["head"] = init_head(rng)
        return params
    if batch is None:
        batch = dummy_batch(config, batch_size=1, image_size=image_size, instruction_length=instruction_length)
    # Under jit: eager init dispatches every op separately and is several times slower.
    init = jax.jit(lambda r, b: VLAPolicy(config).init(r, b)["params"], compiler_options=compiler_options)
    return init(rng, batch)


def dummy_batch(
    config: VLAConfig, batch_size: int = 1, image_size: int | None = None, instruction_length: int = 8
) -> dict:
    """A zero batch with the docs/design.md keys and this config's shapes (init, compile checks)."""
    b, t, c, a = batch_size, config.window_size, config.action_chunk, config.action_dim
    hw = image_size or config.backbone.image_size
    return {
        "image": jnp.zeros((b, t, hw, hw, 3), jnp.uint8),
        "image_mask": jnp.ones((b, t), bool),
        "tokens": jnp.ones((b, instruction_length), jnp.int32),
        "token_mask": jnp.ones((b, instruction_length), bool),
        "action": jnp.zeros((b, t, c, a), jnp.float32),
        "action_mask": jnp.ones((b, t, c), bool),
        "action_dim_mask": jnp.ones((b, a), bool),
        "dataset_id": jnp.zeros((b,), jnp.int32),
    }
