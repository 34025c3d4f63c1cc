"""LLaVA-1.5 in Flax linen, number for number HF's `LlavaForConditionalGeneration`.

CLIP ViT (`vision_model`, the `vla_jax.models.vit` CLIP variant) -> the hidden state of layer
`vision_feature_layer` (HF's `hidden_states[vision_feature_layer]`: index 0 is the embeddings
after `pre_layrnorm`, index i the output of layer i, negative indices count from the end; -2 for
LLaVA-1.5), class token dropped when `vision_feature_select_strategy` is "default", kept when
"full" -> `multi_modal_projector` (linear_1 -> GELU -> linear_2) -> Llama decoder (`text_model`,
`vla_jax.models.decoder` llama variant). Causal attention, 0-indexed positions, no embedding
scale, untied `lm_head`; images 336 px, CLIP mean/std.

Layers past the feature layer and CLIP's `post_layernorm` are in every HF checkpoint (HF's
`CLIPVisionModel` holds them) but never change the output. We keep them as parameters so the
tree, the parameter count and the export equal HF's, and never run them: the tower runs the
first `feature_depth` layers, the remaining ones live in `vision_model/tail` and are only
touched while initialising (so `init` creates them; the vision freeze pattern covers them).

Interface (`vla_jax.models.backbone`): `vision_tower` = HF `vision_tower(px, output_hidden_states
=True).hidden_states[vision_feature_layer]` (class token included: the tensor the selection reads),
`encode_images` = HF `get_image_features(px).pooler_output` (stacked), `embed_tokens` = HF
`get_input_embeddings()(ids)`, `decode` = HF `language_model(inputs_embeds=x, attention_mask,
position_ids)`, `lm_logits` = HF `lm_head`.

Where the image and the action token go, compared with RoboVLMs' `RoboLLaVA` (robovlms/model/
backbone/robollava.py + base_backbone.py), which runs liuhaotian's LLaVA code:

* Weights: RoboVLMs loads `liuhaotian/llava-v1.5-7b` through the original LLaVA repository (and its
  shipped CALVIN config is LLaVA with an MPT-7B LM, `text_tower.wte`); we read the HF-format
  `llava-hf/llava-1.5-7b-hf` layout (the same weights, renamed by transformers' conversion, vocab
  padded to 32064). MPT-based LLaVA is not implemented.
* Features: the same (`mm_vision_select_layer` -2, `mm_vision_select_feature` "patch" = our
  "default"; the 2-layer GELU `mm_projector`).
* Image: both insert the 576 image tokens after BOS (`image_insert_index=1`); HF's chat prompt
  puts `<image>` after "USER: ", which ``image_insert_index`` can reproduce.
* Action token: RoboVLMs inserts the learned token before the LAST text token (the slot it assumes
  is EOS); we append it after the last valid (unpadded) token. The Llama tokenizer adds no EOS to
  an instruction, so the two differ by that one slot. Both add it as is, zero-initialised.
* Image size: RoboVLMs' CALVIN LLaVA config sets `image_size` 224; we feed the tower the size of its
  position table (336 px for LLaVA-1.5: 576 image tokens).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from vla_jax.errors import VLAJaxError
from vla_jax.models import backbone as backbone_lib
from vla_jax.models.decoder import DecoderConfig, DecoderLM, DecoderVLMBackbone
from vla_jax.models.vit import VisionTransformer, ViTConfig, ViTEncoder, activation
from vla_runtime.policy_io import CLIP_MEAN, CLIP_STD

# openai/clip-vit-large-patch14-336: LLaVA-1.5's tower.
CLIP_VIT_L14_336 = ViTConfig(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    image_size=336,
    patch_size=14,
    layer_norm_eps=1e-5,
    hidden_act="quick_gelu",
    variant="clip",
)
# lmsys/vicuna-7b-v1.5 (Llama 2 7B) with the vocabulary padded to 32064 (<image>, <pad>, then to a multiple of 64).
VICUNA_7B = DecoderConfig(
    variant="llama",
    vocab_size=32064,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    head_dim=128,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    hidden_act="silu",
    max_position_embeddings=4096,
    tie_word_embeddings=False,
    query_pre_attn_scalar=None,
    attn_logit_softcapping=None,
    final_logit_softcapping=None,
    sliding_window=None,
)
SELECT_STRATEGIES = ("default", "full")


@dataclasses.dataclass(frozen=True)
class LlavaConfig(backbone_lib.BackboneConfig):
    """Defaults: llava-hf/llava-1.5-7b-hf."""

    model_type = "llava"
    image_mean = CLIP_MEAN
    image_std = CLIP_STD

    vision: ViTConfig = CLIP_VIT_L14_336
    text: DecoderConfig = VICUNA_7B
    vision_feature_layer: int = -2
    vision_feature_select_strategy: str = "default"
    projector_hidden_act: str = "gelu"
    multimodal_projector_bias: bool = True
    image_token_id: int = 32000  # HF's placeholder id; kept for the config round trip only
    dtype: str = "float32"
    scan_layers: bool = True
    remat: bool = False

    def __post_init__(self):
        if self.vision.variant != "clip":
            raise VLAJaxError(f"llava: the vision tower is a CLIP ViT (variant 'clip'), got {self.vision.variant!r}")
        if self.text.variant != "llama":
            raise VLAJaxError(f"llava: the text model is Llama-style, got {self.text.variant!r}")
        if self.vision_feature_select_strategy not in SELECT_STRATEGIES:
            raise VLAJaxError(
                f"llava: vision_feature_select_strategy={self.vision_feature_select_strategy!r}; "
                f"use one of {SELECT_STRATEGIES}"
            )
        n = self.vision.num_hidden_layers
        layer = self.vision_feature_layer
        if not isinstance(layer, int) or not -n <= layer <= n or layer == 0:
            raise VLAJaxError(
                f"llava: vision_feature_layer={layer!r} must be one integer in [{-n}, -1] or [1, {n}] "
                f"(the tower has {n} layers; the embeddings alone (0 / {-(n + 1)}) and lists of layers "
                "are not supported)"
            )
        activation(self.projector_hidden_act)

    @property
    def feature_depth(self) -> int:
        """How many vision layers the selected hidden state has passed through (HF hidden_states index, >= 0)."""
        return self.vision_feature_layer % (self.vision.num_hidden_layers + 1)

    @property
    def image_tokens(self) -> int:
        return self.vision.num_patches + (self.vision_feature_select_strategy == "full")

    @property
    def first_position(self) -> int:
        return 0

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], **knobs) -> LlavaConfig:
        """From a LLaVA config.json dict as transformers' `LlavaConfig(...).to_dict()` fills it."""
        if d.get("model_type") != "llava":
            raise VLAJaxError(f"config model_type is {d.get('model_type')!r}, expected 'llava'")
        vision = dict(d.get("vision_config") or {})
        if vision.get("model_type", "clip_vision_model") != "clip_vision_model":
            raise VLAJaxError(
                f"vision_config.model_type={vision.get('model_type')!r}: only a CLIP tower (clip_vision_model) "
                "is supported"
            )
        layer = d.get("vision_feature_layer", -2)
        if isinstance(layer, (list, tuple)):
            raise VLAJaxError(f"vision_feature_layer={list(layer)}: multi-layer features are not supported")
        text = DecoderConfig.from_hf_dict(d.get("text_config") or {}, "text_config")
        return cls(
            vision=ViTConfig.from_hf_dict(vision, "clip", "vision_config"),
            text=dataclasses.replace(text, tie_word_embeddings=bool(d.get("tie_word_embeddings", False))),
            vision_feature_layer=int(layer),
            vision_feature_select_strategy=str(d.get("vision_feature_select_strategy", "default")),
            projector_hidden_act=str(d.get("projector_hidden_act", "gelu")),
            multimodal_projector_bias=bool(d.get("multimodal_projector_bias", True)),
            image_token_id=int(d.get("image_token_id", d.get("image_token_index", 32000))),
            **knobs,
        )

    def to_hf_dict(self) -> dict[str, Any]:
        return {
            "model_type": "llava",
            "architectures": ["LlavaForConditionalGeneration"],
            "image_token_index": self.image_token_id,
            "image_seq_length": self.image_tokens,
            "projector_hidden_act": self.projector_hidden_act,
            "vision_feature_layer": self.vision_feature_layer,
            "vision_feature_select_strategy": self.vision_feature_select_strategy,
            "multimodal_projector_bias": self.multimodal_projector_bias,
            "tie_word_embeddings": self.text.tie_word_embeddings,
            "vision_config": {"model_type": "clip_vision_model", **self.vision.to_hf_dict()},
            "text_config": self.text.to_hf_dict(),
        }

    @classmethod
    def tiny(cls, **overrides) -> LlavaConfig:
        """A few-KB model for tests (3 vision layers: the feature layer -2 leaves one unused); vocab 1024."""
        vision = dataclasses.replace(
            CLIP_VIT_L14_336,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=3,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
        text = dataclasses.replace(
            VICUNA_7B,
            vocab_size=1024,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=512,
        )
        return cls(vision=vision, text=text).replace(**overrides)

    @classmethod
    def full(cls, **overrides) -> LlavaConfig:
        """llava-hf/llava-1.5-7b-hf (values transcribed in docs/backbones.md)."""
        return cls().replace(**overrides)


class MultiModalProjector(nn.Module):
    """HF `LlavaMultiModalProjector`: linear_1 -> act -> linear_2."""

    config: LlavaConfig

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        cfg, dt = self.config, self.config.compute_dtype

        def dense(name):
            bias = cfg.multimodal_projector_bias
            return nn.Dense(cfg.text.hidden_size, use_bias=bias, dtype=dt, param_dtype=jnp.float32, name=name)

        return dense("linear_2")(activation(cfg.projector_hidden_act)(dense("linear_1")(features)))


class FeatureLayerTower(VisionTransformer):
    """The CLIP tower cut at the feature layer (`config` = the first `feature_depth` layers) plus `tail`: the
    checkpoint's deeper layers, created at init and never run (module docstring)."""

    tail_layers: int = 0

    def setup(self):
        super().setup()
        if self.tail_layers:
            tail = dataclasses.replace(self.config, num_hidden_layers=self.tail_layers)
            self.tail = ViTEncoder(tail, self.dtype, self.scan_layers)

    def __call__(self, pixel_values: jax.Array) -> jax.Array:
        hidden = super().__call__(pixel_values)
        if self.is_initializing():
            self.post_layernorm(hidden)
            if self.tail_layers:
                self.tail(hidden)
        return hidden


class LlavaBackbone(DecoderVLMBackbone):
    config: LlavaConfig

    def setup(self):
        cfg, dt = self.config, self.config.compute_dtype
        depth, n = cfg.feature_depth, cfg.vision.num_hidden_layers
        used = dataclasses.replace(cfg.vision, num_hidden_layers=depth)
        self.vision_model = FeatureLayerTower(used, dt, cfg.scan_layers, cfg.remat, tail_layers=n - depth)
        self.multi_modal_projector = MultiModalProjector(cfg)
        self.text_model = DecoderLM(cfg.text, dt, cfg.scan_layers, cfg.remat)

    def project(self, features):
        if self.config.vision_feature_select_strategy == "default":
            features = features[:, 1:]  # drop the class token
        return self.multi_modal_projector(features)


FAMILY = backbone_lib.Family(
    model_type="llava",
    config_cls=LlavaConfig,
    module_cls=LlavaBackbone,
    table_module="vla_jax.convert.llava_table",
    hf_class="LlavaForConditionalGeneration",
)
