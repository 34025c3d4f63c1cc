"""vla_jax.train"""
