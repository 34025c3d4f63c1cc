"""vla_jax.sim: the simulated mobile-navigation task (MuJoCo scene, robot, scripted expert, data collection).

Evaluation of policies in it lives in `vla_jax.evaluate`.
"""
