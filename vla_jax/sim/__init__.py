"""vla_jax.sim: the simulated mobile-navigation task (MuJoCo scene, robot, scripted expert, data collection).

`vla_jax.sim.metaworld`: the Meta-World v3 manipulation tasks (env, worker process, scripted-expert collection).
Evaluation of policies in either lives in `vla_jax.evaluate`.
"""
