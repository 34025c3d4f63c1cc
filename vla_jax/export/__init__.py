"""vla_jax.export: Flax params -> a `vla_runtime` export folder (`vla-jax export`).

mapping.py  Flax param tree -> the runtime's torch state dict (inverse of the convert table)
export.py   export_policy(vla_config, params, statistics, tokenizer_dir, out_dir, dtype) / export_workdir(...)
verify.py   JAX vs exported torch policy on the same inputs (`--verify`)
commands.py the CLI subcommand

The folder format itself (files, sha256 manifest, int8 layout) is defined once, in
runtime/vla_runtime/bundle.py and quantize.py, which both sides use.
"""
