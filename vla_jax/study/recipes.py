"""Step lists studies share: the simulated data a cell trains on, collected and converted the way a user's is.

Each returns shared Steps named ``collect`` (mobile only), ``rlds`` (the RLDS data dir cells point
``data.config.data_dir`` at) and ``tokenizer`` (``data.tokenizer``), so a cell writes
``{step:rlds}`` / ``{step:tokenizer}``.
"""

from __future__ import annotations

from vla_jax.study.spec import Cell, Step, Study, Table


def mobile_data(episodes: int = 72, image_size: int = 48, seed: int = 0, prefix: str = "") -> list[Step]:
    """sim-collect (HDF5, the users' format) -> convert-episodes (RLDS) -> a BPE tokenizer on the instructions.

    ``prefix`` names a second data set in the same study (``{prefix}collect``, ``{prefix}rlds``, ...).
    """
    size = str(image_size)
    return [
        Step(
            f"{prefix}collect",
            ["sim-collect", "--episodes", str(episodes), "--image-size", size, "--seed", str(seed), "--out", "{dir}"],
        ),
        Step(
            f"{prefix}rlds",
            ["convert-episodes", "--src", f"{{step:{prefix}collect}}", "--out", "{dir}", "--image-size", size]
            + ["--action-dim", "2", "--overwrite"],
        ),
        Step(
            f"{prefix}tokenizer",
            [
                "tokenizer",
                "--from-dataset",
                "mobile_episodes",
                "--data-dir",
                f"{{step:{prefix}rlds}}",
                "--out",
                "{dir}",
            ],
        ),
    ]


def mobile_eval(episodes: int = 10, image_size: int = 48, seed: int = 1) -> list[str]:
    """A cell's closed-loop evaluation on held-out mobile worlds (the exported policy's robot step)."""
    return ["sim-eval", "--env", "mobile", "--episodes", str(episodes), "--seed", str(seed)] + [
        "--image-size",
        str(image_size),
        "--gifs",
        "0",
    ]


def mobile_train_overrides(num_steps: int, batch_size: int | None = None, **model) -> dict:
    """A mobile cell's training overrides: ``num_steps`` (and ``batch_size``), ``model.<field>`` for each of
    ``model``, the shared data and tokenizer (`mobile_data`'s steps), one checkpoint at the end. The order is the
    command line's, which a study's step keys hash."""
    return {
        "num_steps": num_steps,
        **({} if batch_size is None else {"batch_size": batch_size}),
        **{f"model.{k}": v for k, v in model.items()},
        "data.config.data_dir": "{step:rlds}",
        "data.tokenizer": "{step:tokenizer}",
        "checkpoint.every": num_steps,
    }


def mobile_grid_study(
    name: str,
    cells: list[Cell],
    title: str,
    grid: tuple[str, str],
    seeds=(0, 1, 2),
    episodes: int = 72,
    image_size: int = 48,
) -> Study:
    """A grid of mobile cells (``grid``: the rows' and the columns' factor) over ``seeds`` on `mobile_data`,
    reported as one closed-loop success table (and its plot)."""
    return Study(
        name,
        seeds=seeds,
        shared=mobile_data(episodes, image_size),
        cells=cells,
        tables=[Table(title, *grid, "overall.success")],
        env={"MUJOCO_GL": "egl"},
    )


def metaworld_data(
    tasks: str = "mt10", episodes_per_task: int = 18, image_size: int = 64, prefix: str = ""
) -> list[Step]:
    """sim-collect --env metaworld (writes RLDS directly) -> a BPE tokenizer on the task instructions."""
    return [
        Step(
            f"{prefix}rlds",
            ["sim-collect", "--env", "metaworld", "--tasks", tasks, "--episodes-per-task", str(episodes_per_task)]
            + ["--image-size", str(image_size), "--out", "{dir}"],
        ),
        Step(
            f"{prefix}tokenizer",
            ["tokenizer", "--from-dataset", "metaworld", "--data-dir", f"{{step:{prefix}rlds}}", "--out", "{dir}"],
        ),
    ]
