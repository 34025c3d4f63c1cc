"""The four RoboVLMs structures in torch, mirroring vla_jax/vla.py (read its docstring for the layout).

One frame's block, left to right (padding entries removed, valid ones packed to the front):

    tokens[:k]  [<image>]  image latents (Q)  [</image>]  tokens[k:]  tail

positions pad_token_id + 1 + index over the packed sequence; tail = [action_token]
for continuous structures, the C*A action tokens for the discrete one. Cross-attention backbones
(IDEFICS / Flamingo, `adapter.cross_attention_media`): the image part is ONE `<image>` slot and the
latents travel beside the sequence as its media (`Seq.media`, `Seq.media_frame`), read by the
decoder's cross-attention layers (each slot the latest valid image at or before it).

Two ways to run, tested equal:

* `full(pixels [B, T, 3, H, W], valid [B, T], tokens, token_mask)` -> action [B, T, C, A]: the
  training-time computation over the whole window (the reference).
* `step(state, pixels [1, 3, H, W], tokens, token_mask)` -> (state, action [1, C, A]) for the newest
  frame of an episode, reusing the history:
    - one-step structures: only the current frame matters;
    - policy_head: the backbone runs on the new frame only; per-frame action-token features are
      cached and the head re-run over them; the LSTM head instead keeps one run per window start
      alive (the training computation restarts the LSTM at the window's first frame), all advanced
      by the new frame in one batched cell call per layer (`LSTMHead.window_step`);
    - interleaved: image latents are cached per frame and the decoder's KV cache grows by one block
      per step while the episode is shorter than the window. When the window slides, every block's
      position shifts, so the window's blocks are re-decoded from the cached latents (the vision
      tower still runs on the new frame only); with `interleaved_attention: "streaming"` (vla_jax's
      `streaming_mask`) the newest T-1 blocks' keys are cached and a step decodes the new block and its
      action token in one decoder call over them, nothing re-run;
    - one_step_discrete: greedy decoding of the C*A action tokens with a KV cache (one token per
      decoder call instead of a full re-run per token); with `discrete_decoding: "parallel"` the tail is
      the C*A learned `action_queries` and ONE decoder call over the frame's block gives every token
      (vla_jax/vla.py's docstring), in `full` and `step` alike.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, cast

import torch
from torch import nn

from .backbones import BackboneAdapter, DecoderCache, build_backbone
from .backbones.base import check_names, check_shapes, kv_argument, pair_bias
from .cast import as_dtype
from .errors import RuntimeConfigError
from .heads import LSTMHead, build_head
from .policy_io import signed_to_gripper

STRUCTURES = ("one_step_continuous", "one_step_discrete", "interleaved", "policy_head")
DISCRETE_DECODINGS = ("autoregressive", "parallel")
INTERLEAVED_ATTENTIONS = ("causal", "streaming")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile's, for `compile_backbone`


def _check_choice(policy: dict, key: str, known: tuple[str, ...], default: str | None = None) -> None:
    """One `RuntimeConfigError` line (what `Policy.load` raises for a bad export) for a policy value this runtime
    does not know, e.g. from a newer vla-jax."""
    value = policy.get(key, default)
    if value not in known:
        raise RuntimeConfigError(
            f"config.json: policy.{key} {value!r} is unknown; this runtime knows {', '.join(known)} "
            "(update vla-runtime to the release of the vla-jax that exported it)"
        )


@dataclasses.dataclass
class Seq:
    """A decoder input: embeds [N, S, D], valid [N, S], for prefix-LM backbones block ids [N, S] (the block's
    id on its image + text slots, -1 on the tail and on padding; None for causal ones), and the image index
    [N, S] (each image slot's index inside its frame's image, -1 elsewhere; the backbones whose positions
    depend on where the images are, Qwen2.5-VL's 3-D ones, read it)."""

    embeds: torch.Tensor
    valid: torch.Tensor
    blocks: torch.Tensor | None = None
    image_index: torch.Tensor | None = None
    # Cross-attention backbones only: per slot the frame's index in `media` at its <image> slot (-1 elsewhere),
    # and the media themselves [N, M, Q, width] (not per slot: they ride along unchanged by slot operations).
    media_frame: torch.Tensor | None = None
    media: torch.Tensor | None = None

    def _map(self, fn) -> Seq:
        """`fn` applied to every per-slot tensor ([N, S, ...] layout)."""

        def opt(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else fn(t)

        return Seq(
            fn(self.embeds), fn(self.valid), opt(self.blocks), opt(self.image_index), opt(self.media_frame), self.media
        )

    def flat(self, rows: int) -> Seq:
        """[N*k, S, ...] -> [N, k*S, ...] with N = `rows` (the interleaved window as one sequence; block i's media
        become frame i of its row's media, its <image> slot already says frame i)."""
        seq = self._map(lambda t: t.reshape(rows, -1, *t.shape[2:]))
        if seq.media is not None:
            seq.media = seq.media.reshape(rows, -1, *seq.media.shape[2:])
        return seq

    def only_valid(self) -> Seq:
        """Batch 1: the valid entries only (what an incremental step appends to the KV cache)."""
        v = self.valid[0]
        return self._map(lambda t: t[:, v])

    def prefix(self, length: int) -> Seq:
        return self._map(lambda t: t[:, :length])


def cat(seqs: list[Seq]) -> Seq:
    def joined(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
        return None if parts[0] is None else torch.cat(cast(list[torch.Tensor], parts), dim=1)

    return Seq(
        torch.cat([q.embeds for q in seqs], dim=1),
        torch.cat([q.valid for q in seqs], dim=1),
        joined([q.blocks for q in seqs]),
        joined([q.image_index for q in seqs]),
        joined([q.media_frame for q in seqs]),
        joined([q.media for q in seqs]),  # blocks' media are frames of the one row (dim 1)
    )


def pack(seq: Seq) -> tuple[Seq, torch.Tensor]:
    """Valid entries of each row to the front, order kept -> (packed sequence, new index of each slot)."""
    order = torch.argsort((~seq.valid).to(torch.int8), dim=1, stable=True)
    new_index = torch.cumsum(seq.valid.long(), dim=1) - 1

    def gather(t: torch.Tensor) -> torch.Tensor:  # along the slot axis, whatever follows it
        return torch.gather(t, 1, order.reshape(*order.shape, *([1] * (t.dim() - 2))).expand_as(t))

    return seq._map(gather), new_index


def decode_bins(bins: torch.Tensor, num_bins: int, mu: float, has_gripper: bool) -> torch.Tensor:
    """vla_jax.actions.ActionTokenizer.from_bins in torch: bin centres, inverse mu-law, gripper to [0, 1]."""
    y = -1.0 + (bins.double() + 0.5) * (2.0 / num_bins)
    if mu:
        y = torch.sign(y) * torch.expm1(y.abs() * torch.log1p(torch.tensor(float(mu), dtype=torch.float64))) / mu
    y = y.float()
    if has_gripper:
        y = torch.cat([y[..., :-1], signed_to_gripper(y[..., -1:])], dim=-1)
    return y


@dataclasses.dataclass
class FrameTemplate:
    """One frame's block for an episode's instruction at batch 1, built once per episode (`PolicyModel.template`):
    the valid entries only (`Seq.only_valid`), text and tail already embedded, the image slots
    ``embeds[:, image]`` overwritten with each step's latents. A preallocated buffer, so a step neither
    re-embeds the instruction nor packs (sorts, gathers) the block again."""

    seq: Seq
    image: slice
    positions: torch.Tensor | None = None  # of a cache-free decode of `seq` (fixed by its layout), set at first use

    def filled(self, latents: torch.Tensor) -> Seq:
        if self.seq.media is not None:  # cross-attention: the <image> slot stays, the latents are the media
            self.seq.media = latents[:, None]
        else:
            self.seq.embeds[:, self.image] = latents
        return self.seq


@dataclasses.dataclass
class EpisodeState:
    frames_seen: int = 0
    features: collections.deque[torch.Tensor] = dataclasses.field(default_factory=collections.deque)  # [1, D] each
    latents: collections.deque[torch.Tensor] = dataclasses.field(default_factory=collections.deque)  # [1, Q, D] each
    chains: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # the LSTM head's live runs (`window_step`)
    cache: DecoderCache | None = None
    # Per-episode buffers (built at the first step from its tokens): the frame block, and for interleaved the
    # window of T blocks (block i of the window at [i * S, (i + 1) * S)).
    instruction: tuple[torch.Tensor, torch.Tensor] | None = None
    frame: FrameTemplate | None = None
    blocks: list[FrameTemplate] | None = None
    window: Seq | None = None
    window_positions: torch.Tensor | None = None
    # Streaming interleaved (its cache: the newest T-1 blocks' keys, `_streaming_step`): the position step from
    # one frame's block to the next (the positions of frame n = block 0's + n * stride)
    block_stride: torch.Tensor | None = None
    block_pairs: torch.Tensor | None = None  # bool [1, S, S]: which of a block's slots each of its slots sees
    # The step's additive attention mask [1, 1, S, cached + S] (`pair_bias`), made again only when the cache's
    # length changes: from the T-th step on the cache always holds T-1 blocks, so one mask serves the episode.
    step_bias: torch.Tensor | None = None


class PolicyModel(nn.Module):
    """Backbone (transformers' class, registered as `backbone`) + action token + head.

    `adapter` is the backbone's family adapter (`vla_runtime.backbones`); everything
    below uses only its interface, never a family's internals.
    """

    compiled_mode: str | None = None  # the torch.compile mode, once `compile_backbone` ran

    def __init__(self, backbone: dict, policy: dict, dtype: torch.dtype = torch.float32):
        super().__init__()
        _check_choice(policy, "structure", STRUCTURES)
        _check_choice(policy, "discrete_decoding", DISCRETE_DECODINGS, default="autoregressive")
        _check_choice(policy, "interleaved_attention", INTERLEAVED_ATTENTIONS, default="causal")
        self.policy = dict(policy)
        self.structure = policy["structure"]
        self.window = int(policy["window_size"])
        self.action_chunk, self.action_dim = int(policy["action_chunk"]), int(policy["action_dim"])
        decoding = policy.get("discrete_decoding", "autoregressive")  # exports before it existed: autoregressive
        self.parallel_decoding = self.structure == "one_step_discrete" and decoding == "parallel"
        self.insert_index = int(policy.get("image_insert_index", 1))
        brackets = policy.get("image_bracket_tokens")
        self.brackets = None if brackets is None else [int(b) for b in brackets]
        self.adapter: BackboneAdapter = build_backbone(backbone, dtype)
        self.streaming = self.structure == "interleaved" and policy.get("interleaved_attention") == "streaming"
        if self.streaming and (self.cross_attention or not self.adapter.relative_positions):
            raise RuntimeConfigError(
                f"config.json: policy.interleaved_attention 'streaming' needs a rotary-position self-attention "
                f"backbone; backbone.model_type {self.adapter.model_type!r} is not one (export it with 'causal')"
            )
        self.backbone = self.adapter.model
        d = self.adapter.hidden_size
        if self.structure != "one_step_discrete":
            self.action_token = nn.Parameter(torch.zeros(d))
        if self.parallel_decoding:
            self.action_queries = nn.Parameter(torch.zeros(self.action_chunk * self.action_dim, d))
        self.head = build_head(policy, d)
        self._one_valid: torch.Tensor | None = None  # `_head_one`'s mask (a plain attribute: not exported)

    @classmethod
    def from_config(cls, config: dict, dtype: torch.dtype = torch.float32) -> PolicyModel:
        """From config.json's `backbone` and `policy`; the backbone is built in `dtype` (its compute dtype)."""
        return cls(config["backbone"], config["policy"], dtype)

    @property
    def compute_dtype(self) -> torch.dtype:
        return self.adapter.dtype

    def param_dtype_for(self, compute_dtype: torch.dtype):
        """name -> dtype: the backbone and action token in the compute dtype, heads float32 (as vla_jax)."""
        return lambda name: torch.float32 if name.startswith("head.") else compute_dtype

    def assign_weights(self, state: dict[str, torch.Tensor], where: str) -> None:
        """The export's tensors into the model in place (see `BackboneAdapter.assign`): `backbone.` + the HF
        class's state-dict names for the backbone, this module's own names for the action token and the head."""
        prefix = "backbone."
        self.adapter.assign({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, where)
        own = {k: v for k, v in state.items() if not k.startswith(prefix)}
        expected = {k: v for k, v in self.state_dict().items() if not k.startswith(prefix)}
        check_names(where, set(expected), set(own))
        check_shapes(where, expected, own)
        self.load_state_dict(own, strict=False, assign=True)

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """The inverse of `assign_weights`: what an export holds for this model (no HF-tied copies)."""
        tied = {f"backbone.{n}" for n in self.adapter.missing_ok()}
        return {k: v for k, v in self.state_dict().items() if k not in tied}

    def compile_backbone(self, mode: str = "default", backend: str = "inductor") -> None:
        """Opt-in `torch.compile` of the per-step backbone work (`Policy.load(compile=MODE)`): the adapter's image
        encoder (static shapes: the frames' size is the model's) and the HF decoder module (automatic dynamic
        shapes: its sequence length varies with the instruction and the window's fill; compiled static, each
        length would be a compilation of its own, seconds each on a CPU, and past dynamo's limit of 8 the decoder
        would run eagerly). `Policy.compile_backbone` compiles them at load. Outputs equal the eager ones within
        float32 rounding. `mode="reduce-overhead"` replays CUDA graphs on a GPU: that path is
        ready but NOT measured (no GPU was lent to issue 16's sessions); on a CPU it is the default compile."""
        if mode not in COMPILE_MODES:  # torch.compile would raise its own multi-line error at the first call
            raise RuntimeConfigError(f"compile mode {mode!r} is not one of {', '.join(COMPILE_MODES)}")
        if self.compiled_mode is not None:  # wrapping the wrapped modules again would trace dynamo's own frames
            raise RuntimeConfigError(
                f"this policy's backbone is already compiled (mode {self.compiled_mode!r}); load it anew"
            )
        self.compiled_mode = mode
        adapter = self.adapter
        adapter._kv_name = kv_argument(adapter.decoder.forward)  # asked before the module is wrapped
        adapter.encode_images = torch.compile(adapter.encode_images, mode=mode, backend=backend, dynamic=False)
        adapter.decoder = torch.compile(adapter.decoder, mode=mode, backend=backend, dynamic=None)

    # ------------------------------------------------------------------------------ sequences
    @property
    def cross_attention(self) -> bool:
        return bool(getattr(self.adapter, "cross_attention_media", False))

    def _decode(
        self, seq: Seq, cache: DecoderCache | None = None, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        media = {} if seq.media is None else {"media": seq.media, "media_frame": seq.media_frame}
        return self.adapter.decode(
            seq.embeds, seq.valid, cache, positions, block_ids=seq.blocks, image_index=seq.image_index, **media
        )

    def _layout_positions(self, seq: Seq) -> torch.Tensor:
        """The position ids a cache-free decode of `seq` gets: they depend on its layout only (valid slots, image
        index), which is fixed for an episode, so a step reuses them (Qwen's 3-D `get_rope_index` is ~1 ms)."""
        return self.adapter.positions_for(seq.valid.bool(), seq.image_index, None)

    def _decode_template(self, frame: FrameTemplate, latents: torch.Tensor) -> torch.Tensor:
        """`_decode(frame.filled(latents))` with the template's positions computed once per episode."""
        if frame.positions is None:
            frame.positions = self._layout_positions(frame.seq)
        return self._decode(frame.filled(latents), positions=frame.positions)

    def _block(
        self,
        latents: torch.Tensor,
        tokens: torch.Tensor,
        token_mask: torch.Tensor,
        tail: torch.Tensor,
        block_id: int | torch.Tensor = 0,
    ) -> Seq:
        """One frame's unpacked block; latents [N, Q, D] (decoder input space; cross-attention backbones: the
        media [N, Q, width]), tail [N, K, D].

        block_id: int or [N] (prefix-LM backbones: the frame's index in an interleaved window; cross-attention
        backbones: the frame's index in its row's media)."""
        n = latents.shape[0]
        media = None
        if self.cross_attention:
            media = latents[:, None]
            latents = self.adapter.image_slot_embeds(n, latents.device).to(tail.dtype)
        text = self.adapter.embed_tokens(tokens).to(latents.dtype)
        k = min(self.insert_index, text.shape[1])
        image = [latents]
        if self.brackets is not None:
            br = self.adapter.embed_tokens(torch.tensor([self.brackets], device=latents.device)).to(latents.dtype)
            br = br.expand(n, -1, -1)
            image = [br[:, :1], latents, br[:, 1:]]
        image = torch.cat(image, dim=1)
        embeds = torch.cat([text[:, :k], image, text[:, k:], tail.to(latents.dtype)], dim=1)
        ones = torch.ones(n, image.shape[1], dtype=torch.bool, device=latents.device)
        tail_valid = torch.ones(n, tail.shape[1], dtype=torch.bool, device=latents.device)
        valid = torch.cat([token_mask[:, :k], ones, token_mask[:, k:], tail_valid], dim=1)
        image_index = torch.full(valid.shape, -1, dtype=torch.long, device=latents.device)
        first = k + (self.brackets is not None)
        image_index[:, first : first + latents.shape[1]] = torch.arange(latents.shape[1], device=latents.device)
        if media is not None:
            frame = torch.as_tensor(block_id, dtype=torch.long, device=latents.device).reshape(-1, 1).expand(n, 1)
            media_frame = torch.full(valid.shape, -1, dtype=torch.long, device=latents.device)
            media_frame[:, first : first + 1] = frame
            return Seq(embeds, valid, None, image_index, media_frame, media)
        if self.adapter.attention != "prefix_lm":
            return Seq(embeds, valid, None, image_index)
        ids = torch.as_tensor(block_id, dtype=torch.long, device=latents.device).reshape(-1, 1)
        prefix = valid.clone()
        prefix[:, valid.shape[1] - tail.shape[1] :] = False
        blocks = torch.where(prefix, ids.expand(n, valid.shape[1]), torch.full_like(ids, -1))
        return Seq(embeds, valid, blocks, image_index)

    def _action_tail(self, n: int) -> torch.Tensor:
        return self.action_token.expand(n, 1, -1)

    def _query_tail(self, n: int) -> torch.Tensor:
        return self.action_queries.expand(n, -1, -1)

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.adapter.encode_images(as_dtype(pixels, self.compute_dtype))

    def _frame_features(self, latents, tokens, token_mask) -> torch.Tensor:
        """Per-frame sequences -> hidden at each one's action token, [N, D]."""
        n = latents.shape[0]
        packed, new_index = pack(
            self._block(latents, tokens.expand(n, -1), token_mask.expand(n, -1), self._action_tail(n))
        )
        hidden = self._decode(packed)
        idx = new_index[:, -1]
        return hidden[torch.arange(n, device=hidden.device), idx]

    def _head(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        assert self.head is not None  # the continuous structures have one
        out: Any = self.head(as_dtype(features, torch.float32), valid)
        return out["action"]

    def _head_one(self, feat: torch.Tensor) -> torch.Tensor:
        """The head on one frame's features [1, D] as a window of one valid step -> action [1, C, A]; the valid
        mask is made once per device, not per robot step."""
        valid = self._one_valid
        if valid is None or valid.device != feat.device:
            valid = self._one_valid = torch.ones(1, 1, dtype=torch.bool, device=feat.device)
        return self._head(feat[:, None], valid)[:, -1]

    # ------------------------------------------------------------------------------ full window
    @torch.inference_mode()
    def full(
        self, pixels: torch.Tensor, valid: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor
    ) -> torch.Tensor:
        """The training computation (vla_jax.vla.VLAPolicy) -> action [B, T, C, A], zero at invalid steps."""
        b, t = pixels.shape[:2]
        token_mask = token_mask.bool()
        tokens = tokens.repeat_interleave(t, dim=0)
        tmask = token_mask.repeat_interleave(t, dim=0)
        latents = self._encode(pixels.reshape(b * t, *pixels.shape[2:]))
        if self.structure == "one_step_discrete":
            action = self._greedy_tokens(latents, tokens, tmask).reshape(b, t, self.action_chunk, self.action_dim)
        elif self.streaming:
            action = self._head(self._streaming_window(latents, tokens, tmask, valid), valid)
        elif self.structure == "interleaved":
            step_ids = torch.arange(t, device=latents.device).repeat(b)
            block = self._block(latents, tokens, tmask, self._action_tail(b * t), step_ids)
            s = block.embeds.shape[1]
            block.valid = block.valid & valid.reshape(b * t, 1)
            packed, new_index = pack(block.flat(b))
            hidden = self._decode(packed)
            slots = torch.arange(t, device=hidden.device) * s + (s - 1)
            idx = new_index[:, slots].clamp(0, t * s - 1)
            feats = torch.gather(hidden, 1, idx[..., None].expand(-1, -1, hidden.shape[-1]))
            action = self._head(feats, valid)
        else:
            feats = self._frame_features(latents, tokens, tmask).reshape(b, t, -1)
            action = self._head(feats, valid)
        return torch.where(valid[..., None, None], action, torch.zeros((), dtype=action.dtype, device=action.device))

    # ------------------------------------------------------------------------------ discrete
    def _greedy_tokens(self, latents, tokens, token_mask, prompt: FrameTemplate | None = None) -> torch.Tensor:
        """Greedy C*A action tokens -> de-binned actions [N, C*A] (model units).

        With `prompt` (the incremental step: the episode's batch-1 block without a tail) the tokens are
        decoded with a KV cache, one token per decoder call; without it exactly as vla_jax, one full
        forward per token. Parallel decoding: one decoder call, each token read at its query slot
        (`prompt` is then the block with the queries as its tail)."""
        p = self.policy
        vocab, bins = self.adapter.vocab_size, int(p.get("num_bins", 256))
        offset, ca, n = vocab - bins, self.action_chunk * self.action_dim, latents.shape[0]
        ids = torch.full((n, ca), offset, dtype=torch.long, device=latents.device)
        if self.parallel_decoding:
            if prompt is not None:  # the template holds valid entries only: the queries are its last CA
                hidden = self._decode_template(prompt, latents)[:, -ca:]
            else:
                packed, new_index = pack(self._block(latents, tokens, token_mask, self._query_tail(n)))
                hidden = self._decode(packed)
                hidden = hidden[torch.arange(n, device=hidden.device)[:, None], new_index[:, -ca:]]
            ids = self.adapter.lm_logits(hidden, bins).argmax(-1) + offset
        elif prompt is not None:
            cache = self.adapter.new_cache()
            last = self._decode(prompt.filled(latents), cache)[:, -1]
            for j in range(ca):
                choice = self.adapter.lm_logits(last, bins).argmax(-1)
                ids[:, j] = choice + offset
                if j + 1 < ca:
                    emb = self.adapter.embed_tokens(ids[:, j : j + 1]).to(latents.dtype)
                    last = self.adapter.decode(emb, None, cache)[:, 0]
        else:
            for j in range(ca):  # exactly vla_jax: one full forward per token
                tail = self.adapter.embed_tokens(ids).to(latents.dtype)
                packed, new_index = pack(self._block(latents, tokens, token_mask, tail))
                hidden = self._decode(packed)
                before = new_index[:, -ca + j] - 1
                h = hidden[torch.arange(n), before]
                ids[:, j] = self.adapter.lm_logits(h, bins).argmax(-1) + offset
        actions = decode_bins(
            (ids - offset).reshape(n, self.action_chunk, self.action_dim),
            bins,
            float(p.get("mu_law", 0.0)),
            bool(p["has_gripper"]),
        )
        return actions.reshape(n, ca)

    # ------------------------------------------------------------------------------ incremental
    @torch.inference_mode()
    def step(
        self, state: EpisodeState | None, pixels: torch.Tensor, tokens: torch.Tensor, token_mask: torch.Tensor
    ) -> tuple[EpisodeState, torch.Tensor]:
        """Newest frame [1, 3, H, W] -> (state, action [1, C, A]) equal to `full(...)[:, -1]` on the window."""
        state = state or EpisodeState()
        state.frames_seen += 1
        token_mask = token_mask.bool()
        latents = self._encode(pixels)
        self._episode_buffers(state, tokens, token_mask, latents)
        if self.structure == "one_step_discrete":
            action = self._greedy_tokens(latents, tokens, token_mask, prompt=state.frame)
            return state, action.reshape(1, self.action_chunk, self.action_dim)
        if self.structure == "interleaved":
            feat = self._streaming_step(state, latents) if self.streaming else self._interleaved_step(state, latents)
            return state, self._head_one(feat)
        assert state.frame is not None
        # The block's action token is its last valid entry: the template holds no padding.
        feat = self._decode_template(state.frame, latents)[:, -1]  # [1, D]
        if self.structure == "one_step_continuous":
            return state, self._head_one(feat)
        return state, self._policy_head_step(state, feat)

    def template(self, latents, tokens, token_mask, tail, block_id: int = 0) -> FrameTemplate:
        """The `FrameTemplate` of one batch-1 block: `_block` itself on zero latents [1, Q, D] (one definition
        of the layout), valid entries only; the image slots start after the valid text before `insert_index`."""
        q = 1 if self.cross_attention else latents.shape[1]
        seq = self._block(torch.zeros_like(latents), tokens, token_mask, tail, block_id).only_valid()
        start = int(token_mask[0, : min(self.insert_index, tokens.shape[1])].sum()) + (self.brackets is not None)
        return FrameTemplate(seq, slice(start, start + q))

    def _episode_buffers(self, state: EpisodeState, tokens, token_mask, latents) -> None:
        """Builds the episode's templates at its first step (and again if a caller changes the instruction)."""
        if state.instruction is not None and state.instruction[0] is tokens and state.instruction[1] is token_mask:
            return
        state.instruction = (tokens, token_mask)
        if self.structure == "one_step_discrete":
            tail = self._query_tail(1) if self.parallel_decoding else latents[:, :0]
            state.frame = self.template(latents, tokens, token_mask, tail)
            return
        tail = self._action_tail(1)
        state.frame = self.template(latents, tokens, token_mask, tail)
        if self.structure == "interleaved" and not self.streaming:
            state.blocks = [self.template(latents, tokens, token_mask, tail, i) for i in range(self.window)]
            state.window = cat([b.seq for b in state.blocks])  # cat copies: the window is its own buffer
            state.window_positions = None

    def _policy_head_step(self, state: EpisodeState, feat: torch.Tensor) -> torch.Tensor:
        if isinstance(self.head, LSTMHead):
            # One LSTM run per window start kept alive, all advanced in one batched call (`LSTMHead.window_step`):
            # the training computation, growing or slid, without re-running the window's recurrence.
            state.chains, action = self.head.window_step(state.chains, feat, self.window)
            return action
        state.features.append(feat.float())
        while len(state.features) > self.window:
            state.features.popleft()
        t = len(state.features)
        feats = torch.cat(list(state.features), dim=0)[None]  # [1, t, D]
        valid = torch.ones(1, self.window, dtype=torch.bool, device=feat.device)
        if t < self.window:
            feats = torch.cat([feats.new_zeros(1, self.window - t, feats.shape[-1]), feats], dim=1)
            valid[:, : self.window - t] = False
        return self._head(feats, valid)[:, -1]

    # ------------------------------------------------------------------------------ streaming interleaved
    # vla_jax.vla.streaming_mask: a block's slots see their own block, its action token also every earlier
    # block's image + text slots. Computed here in two stages, each a plain causal decode: every block alone
    # (its keys then never change), then each action token over the keys of the blocks it may see. Positions
    # are rotations only (`BackboneAdapter.relative_positions`), so a block's keys cached at the step that
    # made it serve every later step: a step decodes one block and one token.
    def _check_streaming_span(self, slots: int) -> None:
        """A sliding-window layer (Gemma 2's) would drop keys the streaming mask lets a slot see (vla_jax refuses
        to train such a window): `slots`, the window's sequence, must fit in it."""
        window = self.adapter.sliding_window
        if window is not None and slots > window:
            raise RuntimeConfigError(
                f"config.json: policy.interleaved_attention 'streaming' over a window of {slots} slots exceeds the "
                f"backbone's sliding_window {window}; shorten policy.window_size or the instruction"
            )

    def _decode_blocks(self, blocks: Seq, positions: torch.Tensor) -> DecoderCache:
        """Blocks without their action tokens, each row decoded alone -> their cache (keys of every layer)."""
        cache = self.adapter.new_cache()
        self._decode(blocks, cache, positions)
        return cache

    def _action_over(self, history: DecoderCache, positions: torch.Tensor) -> torch.Tensor:
        """Each row's action token at `positions` over the keys `history` lets it see -> hidden [R, D]."""
        rows = history.key_mask.shape[0] if history.key_mask is not None else 1
        return self.adapter.decode(self._action_tail(rows), None, history, positions)[:, -1]

    def _streaming_window(self, latents, tokens, token_mask, valid) -> torch.Tensor:
        """`full`'s streaming features [B, T, D], at the positions of the causal window (invalid frames' blocks
        removed, as vla_jax packs them away)."""
        b, t = valid.shape
        n, dev = b * t, latents.device
        block = self._block(latents, tokens, token_mask, self._action_tail(n), torch.arange(t, device=dev).repeat(b))
        s = block.embeds.shape[1]
        self._check_streaming_span(t * s)
        window = dataclasses.replace(block, valid=block.valid & valid.reshape(n, 1))
        packed, new_index = pack(window.flat(b))
        positions = self._layout_positions(packed)  # [B, T*S] or [3, B, T*S], per packed slot
        positions = torch.gather(positions, -1, new_index.clamp(min=0).expand(positions.shape))
        positions = positions.reshape(*positions.shape[:-2], n, s)  # per unpacked slot, a block per row
        # Stage 1 sees the text padding only (an invalid frame's block is computed, then seen by nobody).
        blocks = self._decode_blocks(block.prefix(s - 1), positions[..., : s - 1])

        def rows(x: torch.Tensor) -> torch.Tensor:
            """Per block [N, ...] -> per row [N, ...] holding its sample's T blocks one after another."""
            if x.dim() == 4:  # keys / values [N, kv_heads, S-1, head_dim]: the sequence is dim 2
                x = x.reshape(b, t, *x.shape[1:]).transpose(1, 2).flatten(2, 3)
            else:  # masks, block ids [N, S-1]
                x = x.reshape(b, -1)
            return x.repeat_interleave(t, dim=0)

        assert blocks.key_mask is not None
        seen = rows(blocks.key_mask & valid.reshape(n, 1))  # [N, T*(S-1)]
        key_block = torch.arange(t, device=dev).repeat_interleave(s - 1)
        seen = seen & (key_block[None] <= torch.arange(t, device=dev).repeat(b)[:, None])  # up to the row's own
        block_ids = None if blocks.block_ids is None else rows(blocks.block_ids)
        history = DecoderCache.from_states([(rows(k), rows(v)) for k, v in blocks.layer_states()], seen, block_ids)
        return self._action_over(history, positions[..., s - 1 :]).reshape(b, t, -1)

    def _streaming_step(self, state: EpisodeState, latents) -> torch.Tensor:
        """The newest block and its action token in ONE decoder call over the window's earlier blocks' cached keys:
        the block's slots see only the block (`pair_mask`), the action token everything (the numbers of
        `_streaming_window`'s two stages). Afterwards the cache keeps the newest T-1 blocks' keys without their
        action tokens, views of what the call wrote: the next call's append is the step's only copy."""
        frame = state.frame
        assert frame is not None
        length = frame.seq.embeds.shape[1]  # the template's valid slots, the action token last
        if frame.positions is None:
            self._check_streaming_span(self.window * length)
            frame.positions = self._layout_positions(frame.seq)
            state.block_stride = self._layout_positions(cat([frame.seq, frame.seq]))[..., length:] - frame.positions
            state.block_pairs = self._block_pairs(frame.seq)
            state.step_bias = None  # made from block_pairs: a new template's mask is made again
        assert state.block_stride is not None and state.block_pairs is not None
        if state.cache is None:  # a plain DynamicCache: its layers are sliced below, which no sliding layer expects
            state.cache = DecoderCache.from_states([], torch.zeros(1, 0, dtype=torch.bool, device=latents.device))
        cache, kept = state.cache, state.cache.length  # kept: earlier blocks x (length - 1) keys
        embeds = frame.filled(latents).embeds
        if state.step_bias is None or state.step_bias.shape[-1] != kept + length:
            pairs = torch.ones(1, length, kept + length, dtype=torch.bool, device=latents.device)
            pairs[:, :-1, :kept] = False  # the block's own slots never see another block
            pairs[:, :, kept:] = state.block_pairs
            state.step_bias = pair_bias(pairs, embeds.dtype)
        positions = frame.positions + state.block_stride * (state.frames_seen - 1)
        hidden = self.adapter.decode(embeds, None, cache, positions, pair_mask=state.step_bias)
        blocks = min(kept // (length - 1) + 1, self.window - 1)
        start, stop = kept + length - 1 - blocks * (length - 1), kept + length - 1
        for layer in cache.kv.layers:  # drop the oldest block once T-1 are kept, and the action token's key
            layer.keys, layer.values = layer.keys[:, :, start:stop], layer.values[:, :, start:stop]
        assert cache.key_mask is not None
        cache.key_mask = cache.key_mask[:, start:stop]
        if cache.block_ids is not None:
            cache.block_ids = cache.block_ids[:, start:stop]
        return hidden[:, -1]

    def _block_pairs(self, block: Seq) -> torch.Tensor:
        """Which of one block's slots each of its slots sees, bool [1, S, S]: causal, plus PaliGemma's
        bidirectional image + text prefix (`block.blocks`), as the decoder's own masks within a block."""
        s = block.embeds.shape[1]
        causal = torch.ones(s, s, dtype=torch.bool, device=block.embeds.device).tril()[None]
        if block.blocks is None:
            return causal
        ids = block.blocks
        return causal | ((ids[:, :, None] == ids[:, None, :]) & (ids[:, :, None] >= 0))

    def _interleaved_step(self, state: EpisodeState, latents) -> torch.Tensor:
        assert state.blocks is not None and state.window is not None
        state.latents.append(latents)
        if state.frames_seen <= self.window:
            # Same positions as the full window (earlier blocks unchanged): extend the KV cache by one block.
            if state.cache is None:
                state.cache = self.adapter.new_cache()
            block = state.blocks[state.frames_seen - 1].filled(latents)
            return self._decode(block, state.cache)[:, -1]
        state.latents.popleft()
        # The window's blocks from the cached latents, written into the preallocated window buffer.
        seq, s = state.window, state.window.embeds.shape[1] // self.window
        if seq.media is not None:  # cross-attention: the window's media, frame i = block i
            seq.media = torch.stack([lat for lat in state.latents], dim=1)
        for i, lat in enumerate(state.latents):
            if seq.media is not None:
                break
            image = state.blocks[i].image
            seq.embeds[:, i * s + image.start : i * s + image.stop] = lat
        state.cache = None  # positions shifted; a fresh cache would be stale next step anyway
        if state.window_positions is None:
            state.window_positions = self._layout_positions(seq)
        return self._decode(seq, positions=state.window_positions)[:, -1]
