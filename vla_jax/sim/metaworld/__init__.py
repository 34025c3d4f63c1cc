"""vla_jax.sim.metaworld: Meta-World v3 as the published VLA protocol runs it (docs/metaworld.md).

tasks.py    MT10 / MT50, the difficulty groups, one instruction per task, disjoint episode seeds
env.py      one task set up as LeRobot does, corner2 camera, fast renderer (only in a process without TF)
worker.py   physics and rendering in a child process; RemoteTaskEnv is its client
collect.py  scripted-expert episodes -> RLDS through data_pipelines.rlds_writer (`sim-collect --env metaworld`)

Evaluation of policies on it lives in `vla_jax.evaluate.metaworld`.
"""
