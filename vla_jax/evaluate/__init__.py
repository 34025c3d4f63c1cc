"""vla_jax.evaluate: how good is a policy, offline and in closed loop.

closed_loop.py      paired left/right episodes in the simulator: success, side, collisions, instruction sensitivity
policies.py         open what `sim-eval --policy PATH` names: an export (torch runtime) or a workdir (JAX)
jax_policy.py       a training workdir as a policy run by JAX: the reference the export is compared with
offline.py          a workdir's per-frame predictions on held-out episodes (`eval-offline`)
offline_metrics.py  the users' per-frame metrics (MAE, RMSE, success@0.1/0.2, direction match)
plots.py            trajectory plots and rollout GIFs of a closed-loop run
metaworld.py        Meta-World closed loop on the published protocol: success per task and difficulty group
metaworld_report.py its table and bar chart beside the published MT50 rows, rollout GIFs
"""
