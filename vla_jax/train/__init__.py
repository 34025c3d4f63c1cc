"""vla_jax.train: one trainer from a laptop CPU to a multi-host TPU pod.

    vla-jax train --config configs/NAME.py --workdir DIR [--config.key=value ...]

Modules: `defaults` (every config field), `config` (files + typed overrides),
`distributed` (jax.distributed from the environment), `sharding` (("data", "fsdp")
mesh, FSDP rules, host->global batches), `state` (TrainState pytree), `optimizer`
(AdamW, schedules, decay mask, RoboVLMs freezing, MultiSteps), `lora` (adapters as
a param-tree transform), `step` (the jitted, donated train step), `model` (config ->
VLAPolicy, init_from), `checkpoint` (workdir layout, orbax, `load_for_inference`),
`loop` (`train`, `build_trainer`), `commands` (the CLI).

Workdir layout (read by `vla-jax export --workdir`): see `vla_jax.train.checkpoint`;
`checkpoint.load_for_inference(workdir, step=None) -> (config, params, statistics)`.
"""
