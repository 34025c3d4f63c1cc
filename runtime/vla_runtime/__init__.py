"""vla_runtime: torch-only runtime for policies exported by vla-jax."""
