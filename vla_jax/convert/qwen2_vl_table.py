"""THE mapping table of Hugging Face `Qwen2VLForConditionalGeneration`: Qwen2.5-VL's table (same module names;
the vision rows follow the config's `qwen2_vl` variant: LayerNorms, fc1 / fc2)."""

from vla_jax.convert.qwen2_5_vl_table import LEGACY_RENAMES, ignored_hf_tensors, mapping_table

__all__ = ["LEGACY_RENAMES", "ignored_hf_tensors", "mapping_table"]
