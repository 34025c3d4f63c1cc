"""Study: structure x history. The four VLA structures x window 1 / 2 / 4, 3 seeds, closed-loop success.

    vla-jax study --config configs/study_structure.py --out runs/structure              # mobile, CPU size
    vla-jax study --config configs/study_structure.py:metaworld --out runs/structure_mw # Meta-World MT10
    vla-jax study --config configs/study_structure.py:mobile-full --out ...             # GPU/TPU size
    vla-jax study --config configs/study_structure.py:metaworld-full --out ...

The RoboVLMs question "which structure, and does history help": one_step_continuous (MLP on the
action token), one_step_discrete (actions as the last vocabulary bins), interleaved (an action
token after every frame, MLP) and policy_head (LSTM over the window's action tokens), each with a
window of 1, 2 and 4 frames. Everything else is fixed: the model of configs/demo.py (mobile: Kosmos-2
layout, 2x64 towers at 48 px, chunk 4, 2-D actions) or configs/metaworld_small.py (64 px, 4-D
actions with gripper), trained from scratch on the same data with the same optimiser.

Mobile (default ARG `mobile`): 72 collected episodes (the users' first set; collection seed 0),
converted to RLDS, a BPE tokenizer on their instructions; each cell trains `num_steps` of `batch_size`
(CPU size: 300 of 16; -full: 1200 of 32, the demo's), exports to the torch runtime and drives 10
held-out worlds (eval seed 1, 5 left/right pairs; -full: 50).
Meta-World (`metaworld`): MT10 expert demonstrations (sim-collect --env metaworld), each cell
evaluated on MT10 with a capped episode length; metric `mean_over_tasks`.

CPU size: see docs/study.md for the measured wall time of one cell and the whole study, with the
load they were measured at. `-full` sizes are for a GPU/TPU and are not measured here.
"""

from pathlib import Path

from vla_jax.study.recipes import metaworld_data, mobile_data
from vla_jax.study.spec import Cell, Study, Table

CONFIGS = Path(__file__).resolve().parent
STRUCTURE_HEADS = {
    "one_step_continuous": "mlp",
    "one_step_discrete": "discrete",
    "interleaved": "mlp",
    "policy_head": "lstm",
}
WINDOWS = (1, 2, 4)
SEEDS = (0, 1, 2)

# ARG -> train steps + batch, eval episodes (per task), eval max steps (None: the env's), collected episodes (per task)
SIZES = {
    "mobile": dict(num_steps=300, batch_size=16, eval_episodes=10, max_steps=None, episodes=72),
    "mobile-full": dict(num_steps=1200, batch_size=32, eval_episodes=50, max_steps=None, episodes=72),
    "metaworld": dict(num_steps=300, batch_size=16, eval_episodes=1, max_steps=150, episodes=5),
    "metaworld-full": dict(num_steps=3000, batch_size=32, eval_episodes=10, max_steps=None, episodes=18),
}


def get_study(arg: str = "mobile") -> Study:
    if arg not in SIZES:
        raise ValueError(f"ARG {arg!r}: use one of {', '.join(SIZES)}")
    size = SIZES[arg]
    metaworld = arg.startswith("metaworld")
    if metaworld:
        config = str(CONFIGS / "metaworld_small.py")
        shared = metaworld_data("mt10", size["episodes"], 64)  # configs/metaworld_small.py's IMAGE_SIZE
        evaluate = ["sim-eval", "--env", "metaworld", "--tasks", "mt10", "--image-size", "64", "--gifs", "0"]
        evaluate += ["--episodes-per-task", str(size["eval_episodes"])]
        metric = "mean_over_tasks"
    else:
        config = str(CONFIGS / "demo.py")
        shared = mobile_data(size["episodes"], 48)  # configs/demo.py's IMAGE_SIZE
        evaluate = ["sim-eval", "--env", "mobile", "--episodes", str(size["eval_episodes"]), "--seed", "1"]
        evaluate += ["--image-size", "48", "--gifs", "0"]
        metric = "overall.success"
    if size["max_steps"]:
        evaluate += ["--max-steps", str(size["max_steps"])]
    cells = [
        Cell(
            f"{structure}_w{window}",
            {"structure": structure, "window": window},
            config,
            overrides={
                "num_steps": size["num_steps"],
                "batch_size": size["batch_size"],
                "model.structure": structure,
                "model.head": head,
                "model.window_size": window,
                "data.config.data_dir": "{step:rlds}",
                "data.tokenizer": "{step:tokenizer}",
                "checkpoint.every": size["num_steps"],
            },
            eval=evaluate,
        )
        for structure, head in STRUCTURE_HEADS.items()
        for window in WINDOWS
    ]
    task = "Meta-World MT10" if metaworld else "mobile navigation, 72 episodes"
    return Study(
        f"structure_{arg}",
        seeds=SEEDS,
        shared=shared,
        cells=cells,
        tables=[Table(f"structure x window ({task}): closed-loop success", "structure", "window", metric)],
        env={"MUJOCO_GL": "egl"},
    )
