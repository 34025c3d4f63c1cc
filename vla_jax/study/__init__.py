"""`vla-jax study`: a grid of ordinary `vla-jax` runs (train + export + closed-loop eval per cell x seed).

`spec` (the config format: Study, Step, Cell, Table), `plan` (a study expanded into concrete, templated
steps in dependency order), `runner` (runs them one after another as subprocesses, resumable), `report`
(mean ± std tables, JSON, plots), `emit` (one SLURM / TPU job per step). See docs/study.md.
"""
