"""The data-strategy study (issue 17): does cross-embodiment pre-training pay on the mobile task?

    vla-jax study --config configs/study_data.py --out study_data --jobs 3  # CPU size: 49.7 min, 2 cores
    vla-jax study --config configs/study_data.py:gpu --out study_data_gpu          # GPU/TPU size

Grid: N = 5, 10, 24, 72 target episodes (the first N of one `sim-collect --seed 0` collection,
converted with their mirrored copies) x strategy x seeds:
  scratch     configs/demo.py's model trained on the N episodes alone;
  pretrained  the same, initialised from one run on the cross-embodiment set `xemb_pretrain`
              (configs/xemb_registry.py; docs/cross_embodiment.md), the 4-D action head re-initialised
              for the 2-D target (`init_reinit = ^head/`, the default);
  scratch_matched  as scratch, for as many steps as pretrained's pre-training + post-training together
              (the control for the extra compute (b) got), at the size's `matched_ns`;
  cotrained   one run on the mixture `xemb_cotrain`: the N episodes are half of every batch, the
              cross-embodiment set the other half (4-D padded actions; the export keeps the target's 2),
              for pretrained's pre-training + post-training steps (`cotrain_steps`): its one run is both.
Every post-training cell trains the same number of steps (cell_steps; the two one-run strategies as many as
pre-training + post-training) from the same tokenizer (trained on every instruction of the
study, target and cross-embodiment, so no strategy sees words the others cannot encode) and is evaluated
closed-loop on the same held-out worlds (`sim-eval --seed 1000`).

The file is also the training config of the two runs that are not configs/demo.py:
    vla-jax train --registry configs/xemb_registry.py --config configs/study_data.py:pretrain --workdir W \\
        --config.data.config.data_dir=DIRS --config.data.tokenizer=TOK
`DIRS` is a comma-separated search path (data_pipelines.rlds.find_builder_dir) over the folders the
datasets were written to. `get_config` builds no study and `get_study` imports the runner only when
called, so either use stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections

from vla_jax.train.config import load_config_file

HERE = Path(__file__).resolve().parent
REGISTRY = str(HERE / "xemb_registry.py")
DEMO = str(HERE / "demo.py")
NAV_EMBODIMENTS = ("low_wide", "mast_narrow", "diff_drive")
TARGET_NS = (5, 10, 24, 72)
EVAL_SEED = 1000  # held-out worlds: collection seeds 0 (target) and 101 (cross-embodiment) never meet them

# Sizes. CPU: what docs/cross_embodiment.md's table was measured at: 49.7 min elapsed with `--jobs 3` on the
# 2-core development machine (2026-12-02, nothing else running). The equal-compute control (a 900-step cell
# costs three 300-step ones) runs at the users' N = 72 only: with it at N = 10 too the grid took 77.7 min
# (`--jobs 2`, 2026-12-01, load 2-8 partly from other jobs), over the hour it is meant to fit.
# GPU/TPU: the same grid with the demo's full step count, more data and more evaluation worlds
# (not run: no accelerator here).
SIZES = {
    "cpu": dict(
        seeds=(0, 1, 2),
        image_size=48,
        xemb_episodes=48,  # per navigation embodiment (one pass over the 48 scenario combinations)
        metaworld_per_task=3,  # MT10 -> 30 episodes
        pretrain_steps=600,
        cell_steps=300,
        eval_episodes=20,
        matched_ns=(72,),
    ),
    "gpu": dict(
        seeds=(0, 1, 2, 3, 4),
        image_size=48,
        xemb_episodes=480,
        metaworld_per_task=20,
        pretrain_steps=6000,
        cell_steps=1200,
        eval_episodes=100,
        matched_ns=TARGET_NS,
    ),
}


def get_config(arg: str = "pretrain") -> ml_collections.ConfigDict:
    """`pretrain` (the cross-embodiment run) or `cotrain` (the target's N episodes inside that mixture).

    The model is configs/demo.py's with a 4-D action output, the width of the mixture's widest
    dataset (Meta-World); data are read by the RLDS mixture loader, as OXE pre-training is.
    """
    if arg not in ("pretrain", "cotrain"):
        raise ValueError(f"configs/study_data.py:{arg}: choose :pretrain or :cotrain")
    config: Any = load_config_file(DEMO)  # ConfigDict attributes are untyped
    size = SIZES["cpu"]
    config.num_steps = size["pretrain_steps"] if arg == "pretrain" else cotrain_steps(size)
    config.model.action_dim = 4
    config.model.has_gripper = False  # Meta-World's gripper (dim 3) is regressed; no target has a gripper
    config.data.tokenizer = ""  # set by the study: {step:tokenizer}
    config.data.config.update(
        dict(
            kind="rlds_mixture",
            data_dir="",  # set by the study: the search path of the converted datasets
            mixture="xemb_pretrain" if arg == "pretrain" else "xemb_cotrain",
            mirror_augment=False,  # the navigation sets are converted with their mirrored copies
            augment=False,  # as configs/demo.py
            shuffle_buffer=2000,
        )
    )
    config.checkpoint.every = config.num_steps
    return config


def cotrain_steps(size: dict) -> int:
    """Steps of a co-training run: pre-training's plus post-training's, the compute the pretrained strategy gets.

    With the target half of every batch, `cell_steps` alone shows it half the target samples a post-training
    cell sees. Measured at the CPU size, N = 72, seed 0 (docs/cross_embodiment.md): 300 steps 0% success,
    600 steps 10%, 900 steps 90%; seed 1: 300 steps 0%, 900 steps 90%; the short runs, like 2 of 3 from-scratch runs of
    300 steps, had not learned to steer by the instruction (lateral output ~0 on either side).
    """
    return size["pretrain_steps"] + size["cell_steps"]


def xemb_commands(size: dict) -> tuple[list[tuple[str, list[str]]], str]:
    """The cross-embodiment set as (step name, vla-jax argv) in run order, and its data-dir search path.

    Templates as the study runner fills them ({dir}: the step's folder, {step:NAME}: another's); the demo's
    `--pretrained` (vla_jax/study/demo_pretraining.py) runs the same commands.
    """
    image = str(size["image_size"])
    commands, dirs = [], []
    for name in NAV_EMBODIMENTS:
        commands.append(
            (
                f"collect_{name}",
                ["sim-collect", "--embodiment", name, "--episodes", str(size["xemb_episodes"])]
                + ["--image-size", image, "--seed", "101", "--out", "{dir}"],
            )
        )
        commands.append(
            (
                f"convert_{name}",
                ["convert-episodes", "--src", f"{{step:collect_{name}}}", "--out", "{dir}", "--name", f"xemb_{name}"]
                + ["--image-size", image, "--action-dim", "3" if name == "diff_drive" else "2"]
                + ["--val-fraction", "0", "--mirror", "--overwrite"],
            )
        )
        dirs.append(f"{{step:convert_{name}}}")
    commands.append(
        (
            "metaworld",
            ["sim-collect", "--env", "metaworld", "--tasks", "mt10", "--episodes-per-task"]
            + [str(size["metaworld_per_task"]), "--image-size", image, "--seed", "101", "--out", "{dir}"],
        )
    )
    dirs.append("{step:metaworld}")
    return commands, ",".join(dirs)


def tokenizer_command(target: str, xemb: str) -> list[str]:
    """A tokenizer over every instruction of the target set and the cross-embodiment set."""
    return ["tokenizer", "--registry", REGISTRY, "--from-dataset", "xemb_cotrain"] + [
        "--data-dir",
        f"{target},{xemb}",
        "--out",
        "{dir}",
    ]


def pretrain_command(size: dict, xemb: str, tokenizer: str) -> list[str]:
    return (
        ["train", "--registry", REGISTRY, "--config", f"{HERE / 'study_data.py'}:pretrain", "--workdir", "{dir}"]
        + ["--quiet", f"--config.num_steps={size['pretrain_steps']}", f"--config.data.config.data_dir={xemb}"]
        + [f"--config.data.tokenizer={tokenizer}"]
    )


def _data_steps(size: dict) -> tuple[list, str]:
    """Shared steps that build the data; returns (steps, cross-embodiment search path)."""
    from vla_jax.study.spec import Step  # pyright: ignore[reportMissingImports]  (the study runner's branch)

    commands, xemb = xemb_commands(size)
    steps = [Step(name, argv) for name, argv in commands]
    image = str(size["image_size"])
    for n in TARGET_NS:
        steps.append(
            Step(
                f"collect_N{n}",
                ["sim-collect", "--episodes", str(n), "--image-size", image, "--seed", "0", "--out", "{dir}"],
            )
        )
        steps.append(
            Step(
                f"target_N{n}",
                ["convert-episodes", "--src", f"{{step:collect_N{n}}}", "--out", "{dir}", "--image-size", image]
                + ["--action-dim", "2", "--val-fraction", "0", "--mirror", "--overwrite"],
            )
        )
    steps.append(Step("tokenizer", tokenizer_command(f"{{step:target_N{max(TARGET_NS)}}}", xemb)))
    return steps, xemb


def get_study(arg: str | None = None):
    from vla_jax.study.spec import Cell, Step, Study, Table  # pyright: ignore[reportMissingImports]

    size = SIZES[arg or "cpu"]
    shared, xemb = _data_steps(size)
    tokenizer = "{step:tokenizer}"
    # One pre-training run shared by every seed's post-training (its own seed variation is not in the
    # spread; a per-seed pre-training triples the dominant cost). The GPU size pre-trains per seed.
    pretrain = Step(
        "pretrain", pretrain_command(size, xemb, tokenizer) + (["--config.seed={seed}"] if arg == "gpu" else [])
    )
    if arg == "gpu":
        per_seed = [pretrain]
    else:
        shared.append(pretrain)
        per_seed = []
    evaluate = ["sim-eval", "--env", "mobile", "--episodes", str(size["eval_episodes"]), "--seed", str(EVAL_SEED)]
    evaluate += ["--image-size", str(size["image_size"])]
    cells = []
    for n in TARGET_NS:
        target = f"{{step:target_N{n}}}"
        common = {"num_steps": size["cell_steps"], "data.tokenizer": tokenizer}
        post = {**common, "data.config.data_dir": target, "data.config.mirror_augment": "false"}
        cells.append(Cell(f"scratch_N{n}", {"strategy": "scratch", "N": n}, DEMO, overrides=post, eval=evaluate))
        # The control for (b)'s extra compute: from scratch for pre-training + post-training steps.
        matched = {**post, "num_steps": size["pretrain_steps"] + size["cell_steps"]}
        if n in size["matched_ns"]:
            cells.append(
                Cell(
                    f"scratch_matched_N{n}",
                    {"strategy": "scratch_matched", "N": n},
                    DEMO,
                    overrides=matched,
                    eval=evaluate,
                )
            )
        cells.append(
            Cell(
                f"pretrained_N{n}",
                {"strategy": "pretrained", "N": n},
                DEMO,
                overrides={**post, "init_from": "{step:pretrain}"},
                eval=evaluate,
            )
        )
        cells.append(
            Cell(
                f"cotrained_N{n}",
                {"strategy": "cotrained", "N": n},
                f"{HERE / 'study_data.py'}:cotrain",
                overrides={**common, "num_steps": cotrain_steps(size), "data.config.data_dir": f"{target},{xemb}"},
                eval=evaluate,
                train_args=("--registry", REGISTRY),
                export_args=("--registry", REGISTRY, "--dataset", "mobile_episodes"),
            )
        )
    return Study(
        "data_strategy",
        seeds=size["seeds"],
        shared=shared,
        per_seed=per_seed,
        cells=cells,
        tables=[
            Table("Closed-loop success on the mobile task", rows="strategy", cols="N"),
            Table("Instruction sensitivity", rows="strategy", cols="N", metric="instruction_sensitivity"),
        ],
        env={"MUJOCO_GL": "egl", **({} if arg == "gpu" else {"JAX_PLATFORMS": "cpu"})},
    )
