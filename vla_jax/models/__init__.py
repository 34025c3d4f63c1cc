"""vla_jax.models"""
