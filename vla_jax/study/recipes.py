"""Step lists studies share: the simulated data a cell trains on, collected and converted the way a user's is.

Each returns shared Steps named ``collect`` (mobile only), ``rlds`` (the RLDS data dir cells point
``data.config.data_dir`` at) and ``tokenizer`` (``data.tokenizer``), so a cell writes
``{step:rlds}`` / ``{step:tokenizer}``.
"""

from __future__ import annotations

from vla_jax.study.spec import Step


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
