"""What the structures need from a backbone, and the loading every family shares.

A family adapter wraps one of Hugging Face transformers' own torch classes
(`model`, a `PreTrainedModel`) and exposes the five things `structures.py` uses:

    encode_images(pixels [N, 3, H, W])  -> image tokens [N, Q, D], in the decoder's input space
    embed_tokens(ids [..])              -> [.., D], in the same space
    decode(embeds [B, S, D], mask [B, S], cache, positions) -> last hidden state [B, S, D]
    lm_logits(hidden [.., D], last)     -> float32 [.., vocab] (or only the last `last` vocabulary entries)
    new_cache()                         -> an empty `DecoderCache` (transformers' DynamicCache inside)

"The decoder's input space" is vla_jax's convention (vla_jax/vla.py): what the
structures concatenate (text, image tokens, the learned action token) is the
sequence the first decoder layer sees before positions are added. Families
whose HF forward scales `inputs_embeds` itself (Kosmos-2's `embed_scale`,
Gemma's `sqrt(hidden)` normaliser) undo that scale on the way in, so the HF
class does its own arithmetic unchanged.

Loading: `build` makes the HF class from the export's config on whatever
device is current (the meta device in `Policy.load`, so nothing is allocated),
in the compute dtype (as `from_pretrained(dtype=...)` does: buffers HF derives
from the default dtype, e.g. Kosmos-2's sinusoidal table, follow it; RoPE
frequencies stay float32). `assign` first computes the non-persistent buffers
with HF's own initialisers (while the parameters are still meta tensors), then
puts the export's tensors in place (`load_state_dict(assign=True)`: peak memory
is the file) and re-ties HF's tied weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Iterator, Set
from typing import Any

import torch

from ..errors import RuntimeConfigError


@dataclasses.dataclass
class DecoderCache:
    """transformers' `DynamicCache` plus, for the positions it holds, the padding mask and (prefix-LM families)
    the block ids: HF's mask builders index both by absolute position, past and new together."""

    kv: Any  # transformers.DynamicCache
    key_mask: torch.Tensor | None = None  # bool [B, length]
    block_ids: torch.Tensor | None = None  # long [B, length]
    next_position: torch.Tensor | None = None  # long [B]: where the next slot's positions start (3-D-position families)

    @property
    def length(self) -> int:
        return 0 if self.key_mask is None else int(self.key_mask.shape[1])

    def layer_states(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per decoder layer the cached (keys, values), each [B, kv_heads, length, head_dim]."""
        return [(layer.keys, layer.values) for layer in self.kv.layers]

    @classmethod
    def from_states(
        cls,
        states: list[tuple[torch.Tensor, torch.Tensor]],
        key_mask: torch.Tensor,
        block_ids: torch.Tensor | None = None,
    ) -> DecoderCache:
        """A cache holding the given per-layer (keys, values) [B, kv_heads, length, head_dim], `key_mask` [B, length]
        saying which keys are seen (e.g. the streaming interleaved action token's view of the window's blocks,
        `layer_states` of several caches joined). A plain `DynamicCache`: it serves one decode and grows no
        further, so no layer needs sliding-window bookkeeping."""
        from transformers import DynamicCache

        kv = DynamicCache()
        for layer, (keys, values) in enumerate(states):
            kv.update(keys, values, layer)
        return cls(kv, key_mask.bool(), block_ids)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def pair_bias(pair_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """bool [B, S, K] (True = seen) -> the additive 4-D mask [B, 1, S, K] HF's attention adds to its logits
    (0 where seen, the dtype's minimum elsewhere), what `BackboneAdapter.decode(pair_mask=)` passes on."""
    bias = torch.zeros(pair_mask.shape, dtype=dtype, device=pair_mask.device)
    return bias.masked_fill(~pair_mask, torch.finfo(dtype).min)[:, None]


def kv_argument(fn) -> str:
    """HF's keyword for the KV cache of `fn`: `cache` in transformers >= 5.2x, `past_key_values` before (5.20.x
    is the newest release that installs on Python 3.10, JetPack 6's). The older name still works in 5.24
    but is deprecated there, so the runtime asks the signature instead of a version number."""
    return "cache" if "cache" in inspect.signature(fn).parameters else "past_key_values"


def hf_config(config_class, backbone: dict[str, Any], where: str = "config.json 'backbone'"):
    """The export's backbone dict (HF `config.json` layout) -> the family's HF config object."""
    try:
        return config_class(**{k: v for k, v in backbone.items() if k != "model_type"})
    except (TypeError, ValueError) as err:
        raise RuntimeConfigError(
            f"{where} is not a valid {config_class.__name__} ({err}); re-export the model"
        ) from err


def build_hf(model_class, config, dtype: torch.dtype) -> Any:
    """The HF class from a config, in `dtype`, on the current device (meta inside `with torch.device('meta')`)."""
    with default_dtype(dtype):
        model = model_class._from_config(config, dtype=dtype)
    return model.eval()


def materialize_buffers(model: Any) -> None:
    """Computes HF's non-persistent buffers (position ids, sinusoid tables, RoPE frequencies, Gemma's embedding
    scale) on the CPU while every parameter is still a meta tensor.

    HF's own initialisers write them (`initialize_weights`, what `from_pretrained` runs for
    tensors a checkpoint does not hold). Doing it BEFORE the weights are assigned means an
    initialiser can only ever touch meta parameters: nothing loaded can be overwritten (in
    transformers 5.20 the embedding initialiser zeroes the padding row even of loaded weights).
    """
    buffers = dict(model.named_non_persistent_buffers())
    if not any(b.is_meta for b in buffers.values()):
        return  # built on a real device: HF computed them in __init__
    if any(not p.is_meta for p in model.parameters()):
        raise RuntimeError("materialize_buffers runs on a meta-device model before its weights are assigned")
    for name, buf in buffers.items():
        owner, _, attr = name.rpartition(".")
        model.get_submodule(owner).register_buffer(attr, torch.empty_like(buf, device="cpu"), persistent=False)
    model.initialize_weights()
    left = [n for n, b in model.named_non_persistent_buffers() if b.is_meta]
    if left:
        raise RuntimeConfigError(f"backbone buffers {left[:5]} could not be rebuilt by transformers' initialisers")


def check_names(where: str, expected: Set[str], given: Set[str], optional: Set[str] = frozenset()) -> None:
    missing, unexpected = sorted(expected - given - optional), sorted(given - expected)
    if missing or unexpected:
        raise RuntimeConfigError(
            f"{where}: tensors do not fit the config (missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}); re-export with a matching vla-jax"
        )


def check_shapes(
    where: str, expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor], display: dict[str, str] | None = None
) -> None:
    for name, tensor in given.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            shown = (display or {}).get(name, name)
            raise RuntimeConfigError(
                f"{where}: {shown} has shape {tuple(tensor.shape)}, the config needs "
                f"{tuple(expected[name].shape)}; re-export"
            )


def tie_weights(model: Any) -> None:
    """Re-ties HF's tied weights (e.g. lm_head = embed_tokens) after the untied file was assigned."""
    if getattr(model, "all_tied_weights_keys", None):
        model.tie_weights()


def tied_names(model: Any) -> set:
    """Tensors HF ties to another one: absent from exports (as from HF's own safetensors files)."""
    return set(getattr(model, "all_tied_weights_keys", None) or {})


class BackboneAdapter:
    """One HF VLM class behind the interface of this module's docstring. Not an nn.Module: `PolicyModel`
    registers `model` itself as its `backbone`, so exported names are `backbone.` + HF's own names."""

    model_type: str = ""
    # The transformers PreTrainedModel (an nn.Module). Typed Any: transformers is imported lazily, and
    # torch types every submodule attribute as `Tensor | Module`, so HF's API would not type-check anyway.
    model: Any
    attention: str = "causal"  # or "prefix_lm" (PaliGemma): decode takes block_ids
    # True (IDEFICS / Flamingo): a frame is one slot (`image_slot_embeds`) and `encode_images`' output is the
    # media `decode(..., media=, media_frame=)` reads by cross-attention (structures.py)
    cross_attention_media: bool = False
    # True: positions are rotations of queries and keys only (RoPE), so a cached key stays valid wherever the
    # query is (the streaming interleaved step); False: absolute position embeddings (Kosmos-2)
    relative_positions: bool = True
    first_position: int = 0  # position id of slot 0 (HF's numbering for inputs_embeds)

    # Facts about the family, set by each adapter's __init__ from the HF config.
    hidden_size: int  # D
    vocab_size: int  # V (the LM head's rows)
    image_size: int  # square input side in pixels
    kv_values_per_token: int  # keys + values the decoder caches per token, all layers (sizes.py)
    sliding_window: int | None = None  # the span of the decoder's sliding-window layers (Gemma 2), None: none

    def set_decoder_facts(self, text, vision) -> None:
        """The facts above from a Llama / Gemma-style text config (GQA: num_key_value_heads x head_dim per
        layer cached) and the vision config."""
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        self.hidden_size, self.vocab_size = int(text.hidden_size), int(text.vocab_size)
        self.image_size = int(vision.image_size)
        self.kv_values_per_token = 2 * int(text.num_hidden_layers) * int(text.num_key_value_heads) * int(head_dim)
        sliding = "sliding_attention" in (getattr(text, "layer_types", None) or ())
        self.sliding_window = int(text.sliding_window) if sliding else None

    @property
    def dtype(self) -> torch.dtype:
        return self.model.get_input_embeddings().weight.dtype

    # ------------------------------------------------------------------ what the structures call
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def image_slot_embeds(self, n: int, device=None) -> torch.Tensor:
        """[n, 1, D]: what stands for a frame in the sequence (cross-attention families only)."""
        raise NotImplementedError

    logit_softcap: float | None = None  # Gemma 2: tanh(logits / c) * c

    def lm_head_weight(self) -> torch.Tensor:
        """[V, D]: the LM head (tied to the token embedding where the family ties it)."""
        raise NotImplementedError

    def lm_logits(self, hidden: torch.Tensor, last: int | None = None) -> torch.Tensor:
        """float32 logits; `last` = only the last `last` vocabulary entries (the action bins), from those rows
        of the head alone: one [bins, D] product per decoded token instead of the whole vocabulary's."""
        weight = self.lm_head_weight()
        if last is not None:
            weight = weight[weight.shape[0] - last :]
        logits = hidden.float() @ weight.float().t()
        if self.logit_softcap:
            logits = torch.tanh(logits / self.logit_softcap) * self.logit_softcap
        return logits

    def run_decoder(
        self, embeds: torch.Tensor, key_mask: torch.Tensor, positions: torch.Tensor, kv, block_ids: torch.Tensor | None
    ) -> torch.Tensor:
        """The family's HF decoder call: masks/ids cover cache + new positions, `kv` is the DynamicCache or None.
        Default: `self.decoder` on the 2-D padding mask (HF builds the causal mask itself)."""
        return self.call_decoder(embeds, key_mask, positions, kv)

    decoder: Any  # the HF decoder module `call_decoder` runs (e.g. Kosmos2TextModel, GemmaModel)

    def call_decoder(self, embeds: torch.Tensor, attention_mask, positions: torch.Tensor, kv) -> torch.Tensor:
        """`self.decoder(inputs_embeds=...)`'s last hidden state; `kv` (a DynamicCache or None) under the
        keyword this transformers release uses (see `kv_argument`)."""
        if getattr(self, "_kv_name", None) is None:
            self._kv_name = kv_argument(self.decoder.forward)
        out = self.decoder(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=kv is not None,
            return_dict=True,
            **{self._kv_name: kv},
        )
        return out.last_hidden_state

    def decode(
        self,
        embeds: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: DecoderCache | None = None,
        positions: torch.Tensor | None = None,
        block_ids: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
        pair_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decoder over `embeds` [B, S, D] (the decoder's input space) -> last hidden state after the final norm.

        mask: bool [B, S], False = padding (default all valid). positions: [B, S] (default
        `first_position` + what the cache holds + arange(S), HF's inputs_embeds numbering).
        block_ids: [B, S] for prefix-LM families (same id >= 0 = bidirectional block, -1 = causal;
        default all -1). image_index: [B, S], each image slot's index inside its image, -1 elsewhere (default
        all -1), for families whose positions depend on it (`positions_for`). With `cache`, attends to
        everything cached and appends these positions to it. pair_mask: bool [B, S, cached + S], which keys each
        new slot sees, causality and padding included (it replaces the rule above; HF takes it as a prepared 4-D
        mask, additive so that eager and SDPA attention read it alike), or that additive mask itself
        (`pair_bias`), which a caller reusing one mask step after step makes once; the cache still records `mask`.
        """
        b, s = embeds.shape[:2]
        new_mask = torch.ones(b, s, dtype=torch.bool, device=embeds.device) if mask is None else mask.bool()
        if positions is None:
            positions = self.positions_for(new_mask, image_index, cache)
        past_mask = None if cache is None else cache.key_mask
        key_mask = new_mask if past_mask is None else torch.cat([past_mask, new_mask], dim=1)
        blocks = None
        if self.attention == "prefix_lm":
            blocks = (
                torch.full((b, s), -1, dtype=torch.long, device=embeds.device)
                if block_ids is None
                else block_ids.long()
            )
            past_blocks = None if cache is None else cache.block_ids
            if past_blocks is not None:
                blocks = torch.cat([past_blocks, blocks], dim=1)
        attend = key_mask
        if pair_mask is not None:
            attend = pair_bias(pair_mask, embeds.dtype) if pair_mask.dtype == torch.bool else pair_mask
        hidden = self.run_decoder(embeds, attend, positions, None if cache is None else cache.kv, blocks)
        if cache is not None:
            cache.key_mask, cache.block_ids = key_mask, blocks
        return hidden

    def positions_for(
        self, mask: torch.Tensor, image_index: torch.Tensor | None, cache: DecoderCache | None
    ) -> torch.Tensor:
        """Default position ids of new slots [B, S]: `first_position` + what the cache holds + arange(S)."""
        b, s = mask.shape
        start = 0 if cache is None else cache.length
        return torch.arange(start, start + s, device=mask.device)[None].expand(b, s) + self.first_position

    def new_cache(self) -> DecoderCache:
        from transformers import DynamicCache

        return DecoderCache(DynamicCache(config=self.model.config.get_text_config(decoder=True)))

    # ------------------------------------------------------------------ loading
    def missing_ok(self) -> set:
        """Module state-dict names an export may leave out (HF-tied copies, e.g. lm_head)."""
        return tied_names(self.model)

    def assign(self, state: dict[str, torch.Tensor], where: str) -> None:
        """Backbone tensors under the HF class's own state-dict names -> into the model in place (`assign=True`:
        no copy, so a meta-device build never allocates twice). Every name and shape must fit; only HF-tied
        copies (e.g. lm_head) may be absent."""
        module_state = self.model.state_dict()
        check_names(where, set(module_state), set(state), self.missing_ok())
        check_shapes(where, module_state, state)
        materialize_buffers(self.model)
        self.model.load_state_dict(state, strict=False, assign=True)
        tie_weights(self.model)
        left = [n for n, t in self.model.state_dict().items() if t.is_meta]
        if left:
            raise RuntimeConfigError(f"{where}: backbone tensors {left[:5]} are neither in the export nor tied")
