"""vla_jax.convert"""
