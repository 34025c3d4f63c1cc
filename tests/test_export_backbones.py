"""Export parity for every backbone family: the JAX policy vs the exported torch runtime (transformers' class).

The Kosmos-2 grid (every structure x head, every dtype) is tests/test_export.py; here each other family runs
the structures whose sequence it builds differently, in float32 at <= 1e-4, through the same `verify_export`.
"""

import os

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from test_export import STATS, random_params, tiny_config  # noqa: E402, F401

from vla_jax.export.export import export_policy  # noqa: E402
from vla_jax.export.verify import verify_export  # noqa: E402
from vla_jax.models.clip_kosmos2 import ClipKosmos2Config  # noqa: E402
from vla_jax.models.idefics_config import IdeficsConfig  # noqa: E402
from vla_jax.models.llava import LlavaConfig  # noqa: E402
from vla_jax.models.paligemma import PaliGemmaConfig  # noqa: E402
from vla_jax.models.qwen2_5_vl import Qwen2_5_VLConfig  # noqa: E402
from vla_jax.models.qwen2_vl import Qwen2VLConfig  # noqa: E402
from vla_jax.models.smolvlm import SmolVLMConfig  # noqa: E402

BACKBONES = {
    "paligemma2": lambda: PaliGemmaConfig.tiny("gemma2"),
    "paligemma": lambda: PaliGemmaConfig.tiny("gemma"),
    "smolvlm": SmolVLMConfig.tiny,
    "clip-kosmos-2": ClipKosmos2Config.tiny,
    "llava": LlavaConfig.tiny,
    "qwen2_5_vl": Qwen2_5_VLConfig.tiny,
    "qwen2_vl": Qwen2VLConfig.tiny,
    "idefics": IdeficsConfig.tiny,
}
CASES = [
    ("paligemma2", "policy_head", "lstm"),
    ("paligemma2", "interleaved", "mlp"),
    ("paligemma", "one_step_discrete", "discrete"),
    ("smolvlm", "policy_head", "lstm"),
    ("smolvlm", "one_step_continuous", "mlp"),
    ("clip-kosmos-2", "policy_head", "gpt"),
    ("llava", "policy_head", "lstm"),
    ("llava", "one_step_discrete", "discrete"),
    # 3-D positions over the interleaved window (several images, a growing KV cache) and the cached greedy decode
    ("qwen2_5_vl", "interleaved", "mlp"),
    ("qwen2_5_vl", "one_step_discrete", "discrete"),
    ("qwen2_vl", "interleaved", "mlp"),
    # cross-attention media: the window's images read by gated cross-attention, the media kept with the KV cache
    ("idefics", "interleaved", "mlp"),
    ("idefics", "one_step_discrete", "discrete"),  # policy_head + LSTM: tests/test_backbones_train.py's export
    # parallel discrete decoding: the query tail causal after PaliGemma's bidirectional prefix, and read beside
    # IDEFICS' cross-attention media
    ("paligemma", "one_step_discrete", "discrete", "parallel"),
    ("idefics", "one_step_discrete", "discrete", "parallel"),
    # the streaming interleaved window (4th entry: interleaved_attention): the runtime computes each block alone,
    # then the action tokens over the blocks' keys, against vla_jax's one-pass mask; PaliGemma's prefix inside a
    # block, Qwen's 3-D positions across blocks
    ("paligemma", "interleaved", "mlp", "streaming"),
    ("smolvlm", "interleaved", "mlp", "streaming"),
    ("qwen2_5_vl", "interleaved", "mlp", "streaming"),
]


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_float32_export_parity_per_backbone(case, tokenizer_dir, tmp_path):  # noqa: F811
    family, structure, head, *variant = case  # a 4th entry: discrete_decoding, or interleaved_attention
    key = "interleaved_attention" if structure == "interleaved" else "discrete_decoding"
    cfg = tiny_config(structure, head, backbone=BACKBONES[family](), **dict(zip([key], variant)))
    params = random_params(cfg)
    out = str(tmp_path / "f32")
    export_policy(cfg, params, STATS, tokenizer_dir, out, "float32", instruction_length=12)
    result = verify_export(cfg, params, out, fast_compile=True)
    assert result["ok"] and result["max_abs_action_diff"] <= 1e-4, result
    assert result["max_abs_action"] > 0.05  # not two zero outputs
