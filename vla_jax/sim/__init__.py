"""vla_jax.sim"""
