"""The backbone interface every VLM family implements, and the registry keyed by HF `model_type`.

`vla_jax.vla` sees a backbone only through this interface (the contract, with the exact Hugging
Face torch expression each method equals, is /work/coord/BACKBONE_INTERFACE.md, mirrored in
docs/INTERFACES.md):

    config = backbone.config_from_dict(d)       # d["model_type"] picks the family
    module = backbone.build(config)             # a `Backbone` (flax.linen Module)
    module.encode_images(pixels)   float NHWC normalised [N, H, W, 3] -> [N, config.image_tokens, D]
    module.embed_tokens(ids)       int [B, S] -> [B, S, D]   (same space as encode_images' output)
    module.decode(embeds, attention_mask, deterministic, positions=None, position_offset=0, block_ids=None)
                                   -> last hidden state [B, S, D] after the final norm
                                   (attention_mask [B, S] = real keys, or [B, S, S] = the pairs that may
                                   attend, `attention.decoder_mask`; families with `relative_positions`)
    module.lm_logits(hidden)       -> float32 [B, S, V]
    module.vision_tower(pixels)    -> the vision encoder's last hidden state (parity stage 1)

Family modules are imported lazily (`_FAMILY_MODULES`): each defines `FAMILY = Family(...)`, so
importing this file never pulls in every family, and family files can import this one.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from vla_jax.errors import VLAJaxError

ATTENTION_PATTERNS = ("causal", "prefix_lm")

# model_type -> module defining FAMILY. The CLIP + Kosmos-2 hybrid is ours (not an HF model_type).
_FAMILY_MODULES = {
    "kosmos-2": "vla_jax.models.kosmos2",
    "clip-kosmos-2": "vla_jax.models.clip_kosmos2",
    "paligemma": "vla_jax.models.paligemma",
    "smolvlm": "vla_jax.models.smolvlm",
    "llava": "vla_jax.models.llava",
    "qwen2_5_vl": "vla_jax.models.qwen2_5_vl",
    "qwen2_vl": "vla_jax.models.qwen2_vl",
    "idefics": "vla_jax.models.idefics",
}
SUPPORTED_MODEL_TYPES = tuple(_FAMILY_MODULES)


class BackboneConfig:
    """Base of every family's frozen config dataclass (see the module docstring for the contract).

    Subclasses are `@dataclasses.dataclass(frozen=True)` with the run-time knobs ``dtype`` (compute
    dtype; params stay float32), ``scan_layers`` and ``remat``, and define the properties below.
    """

    model_type: ClassVar[str]
    attention: ClassVar[str] = "causal"
    # True: positions enter only as rotations of queries and keys (RoPE), so attention depends on position
    # differences alone (what a streaming KV cache needs); False: absolute position embeddings are added
    relative_positions: ClassVar[bool] = True
    image_mean: ClassVar[tuple[float, float, float]]
    image_std: ClassVar[tuple[float, float, float]]

    # -- what the structures need (defaults for families with `vision` and `text` sub-configs) -----
    @property
    def hidden_size(self) -> int:  # D: width of decode's input and output
        return self.text.hidden_size  # type: ignore[attr-defined]

    @property
    def vocab_size(self) -> int:
        return self.text.vocab_size  # type: ignore[attr-defined]

    @property
    def image_size(self) -> int:
        return self.vision.image_size  # type: ignore[attr-defined]

    @property
    def image_tokens(self) -> int:  # vectors per frame from encode_images
        raise NotImplementedError

    @property
    def sliding_window(self) -> int | None:
        """The attention span of the decoder's sliding-window layers (Gemma 2's), None when every layer sees
        the whole sequence."""
        text = getattr(self, "text", None)
        layers = getattr(text, "sliding_layers", None)
        return int(text.sliding_window) if layers is not None and layers.any() else None  # type: ignore[union-attr]

    @property
    def first_position(self) -> int:  # position id of the first slot of a sequence
        raise NotImplementedError

    @property
    def compute_dtype(self):
        return jnp.dtype(self.dtype)  # type: ignore[attr-defined]

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able, nested sub-configs as dicts, with ``model_type`` (what VLAConfig and train configs store)."""
        return {"model_type": self.model_type, **dataclasses.asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """Inverse of `to_dict` (``model_type`` optional here, checked when present)."""
        d = dict(d)
        model_type = d.pop("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise VLAJaxError(f"backbone config: model_type {model_type!r} given to the {cls.model_type!r} family")
        sub_types = {f.name: f.type for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        known = set(sub_types)
        unknown = sorted(set(d) - known)
        if unknown:
            raise VLAJaxError(
                f"backbone config ({cls.model_type}): unknown keys {unknown}; known keys are {sorted(known)}"
            )
        defaults = cls()
        out = {}
        for key, value in d.items():
            default = getattr(defaults, key)
            if dataclasses.is_dataclass(default) and not isinstance(default, type) and isinstance(value, dict):
                sub_known = {f.name for f in dataclasses.fields(default)}
                bad = sorted(set(value) - sub_known)
                if bad:
                    raise VLAJaxError(
                        f"backbone config ({cls.model_type}).{key}: unknown keys {bad}; "
                        f"known keys are {sorted(sub_known)}"
                    )
                value = dataclasses.replace(default, **_tuplify(value))
            out[key] = value
        return cls(**_tuplify(out))

    def replace(self, **overrides):
        """`dataclasses.replace` that also accepts dicts for nested sub-configs (merged into them)."""
        for key, value in list(overrides.items()):
            sub = getattr(self, key, None)
            if isinstance(value, dict) and dataclasses.is_dataclass(sub) and not isinstance(sub, type):
                overrides[key] = dataclasses.replace(sub, **value)
        return dataclasses.replace(self, **overrides)  # type: ignore[type-var]


def _tuplify(d: dict[str, Any]) -> dict[str, Any]:
    """JSON gives lists; frozen (hashable) configs hold tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


class Backbone(nn.Module):
    """Base of every family's Flax module: the methods `vla.py` uses (contract in the module docstring)."""

    config: Any

    def vision_tower(self, pixel_values: jax.Array) -> jax.Array:
        raise NotImplementedError

    def encode_images(self, pixel_values: jax.Array) -> jax.Array:
        raise NotImplementedError

    def embed_tokens(self, token_ids: jax.Array) -> jax.Array:
        raise NotImplementedError

    def decode(
        self,
        inputs_embeds: jax.Array,
        attention_mask: jax.Array | None = None,
        deterministic: bool = True,
        positions: jax.Array | None = None,
        position_offset: int | jax.Array = 0,
        block_ids: jax.Array | None = None,
    ) -> jax.Array:
        raise NotImplementedError

    def lm_logits(self, hidden: jax.Array) -> jax.Array:
        raise NotImplementedError

    def sequence_positions(self, valid: jax.Array, image_index: jax.Array) -> jax.Array | None:
        """Position ids for `decode` of a sequence of `valid` slots [B, S] whose image slots carry their index
        inside their frame's image (`image_index`, -1 elsewhere), in the same slot order.

        None (the default): `decode`'s own `first_position + slot index`. Families whose positions depend
        on where the images are (Qwen2.5-VL's 3-D multimodal positions, [3, B, S]) override it."""
        return None

    def init_inputs(self) -> tuple:
        """Arguments for `__call__` that touch every parameter (used by `init_params`)."""
        cfg = self.config
        pixels = jnp.zeros((1, cfg.image_size, cfg.image_size, 3), jnp.float32)
        return pixels, jnp.full((1, 2), 2, jnp.int32)

    def __call__(self, pixel_values: jax.Array, token_ids: jax.Array) -> jax.Array:
        """[image ; tokens] through the decoder -> LM logits; exists so `init` creates every parameter."""
        embeds = jnp.concatenate([self.encode_images(pixel_values), self.embed_tokens(token_ids)], axis=1)
        return self.lm_logits(self.decode(embeds))


@dataclasses.dataclass(frozen=True)
class Family:
    """What the registry knows about one backbone family."""

    model_type: str
    config_cls: type
    module_cls: type
    table_module: str  # vla_jax.convert.<family>_table: mapping_table(config), IGNORED_HF_TENSORS
    hf_class: str  # the transformers class the runtime and verify-hf build ("PaliGemmaForConditionalGeneration")


def family(model_type: str | None) -> Family:
    if model_type not in _FAMILY_MODULES:
        raise VLAJaxError(
            f"backbone model_type {model_type!r} is not supported; supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return importlib.import_module(_FAMILY_MODULES[model_type]).FAMILY


def config_from_dict(d: dict[str, Any]):
    """Our serialised backbone config (``to_dict`` output) -> the family's config."""
    if not isinstance(d, dict):
        raise VLAJaxError(f"backbone config must be a dict with a model_type, got {type(d).__name__}")
    if "model_type" not in d:
        # Written before backbone families existed: Kosmos-2 was the only backbone, with these keys.
        legacy = {"vision", "text", "latent_query_num", "dtype", "scan_layers", "remat"}
        if "latent_query_num" in d and set(d) <= legacy:
            return family("kosmos-2").config_cls.from_dict(d)
        raise VLAJaxError(
            f"backbone config has no 'model_type'; add model_type (one of {', '.join(SUPPORTED_MODEL_TYPES)}) to it"
        )
    return family(d["model_type"]).config_cls.from_dict(d)


def build(config) -> Backbone:
    return family(config.model_type).module_cls(config)


def init_params(config, rng: jax.Array | int = 0, compiler_options: dict | None = None) -> dict:
    """Random float32 params of the backbone (under jit: one compile instead of op-by-op init)."""
    if isinstance(rng, int):
        rng = jax.random.PRNGKey(rng)
    module = build(config)
    init = jax.jit(lambda r: module.init(r, *module.init_inputs())["params"], compiler_options=compiler_options)
    return init(rng)


def param_shapes(config) -> dict:
    """`jax.eval_shape` of `init_params`: shapes without allocating (param counts of released sizes)."""
    module = build(config)
    return jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *module.init_inputs())["params"])


def param_count(config) -> int:
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(param_shapes(config)))


# RoboVLMs' best CALVIN backbone; the VLAConfig default.
DEFAULT_MODEL_TYPE = "kosmos-2"


def default_config():
    return family(DEFAULT_MODEL_TYPE).config_cls()
