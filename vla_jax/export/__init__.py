"""vla_jax.export"""
