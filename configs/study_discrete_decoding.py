"""Study: how one_step_discrete decodes its action tokens, x history. Autoregressive vs parallel, window 1 / 2 / 4.

    vla-jax study --config configs/study_discrete_decoding.py --out runs/discrete_decoding   # mobile, CPU size

The question behind `VLAConfig.discrete_decoding`: "parallel" reads all C*A action tokens from one decoder
pass over learned query slots (its robot step costs about one frame's backbone pass, bench/RESULTS.md
section 4e), where "autoregressive" (RoboVLMs' discrete structure) conditions token j on tokens < j and
decodes them one by one. Does giving that up cost closed-loop success? Everything else is
configs/study_structure.py's mobile grid at CPU size: configs/demo.py's model (Kosmos-2 layout, 2x64
towers at 48 px, chunk 4, 2-D actions, so C*A = 8 tokens) trained from scratch for 300 steps of 16 on
the 72 collected episodes, exported to the torch runtime, 10 held-out worlds (eval seed 1), 3 seeds.
docs/study.md gives the measured table and wall time.
"""

from pathlib import Path

from vla_jax.study.recipes import mobile_eval, mobile_grid_study, mobile_train_overrides
from vla_jax.study.spec import Cell, Study

DEMO = str(Path(__file__).resolve().with_name("demo.py"))
DECODINGS = ("autoregressive", "parallel")
WINDOWS = (1, 2, 4)
SEEDS = (0, 1, 2)
NUM_STEPS, BATCH_SIZE, EVAL_EPISODES, EPISODES, IMAGE_SIZE = 300, 16, 10, 72, 48


def get_study(arg=None) -> Study:
    cells = [
        Cell(
            f"{decoding}_w{window}",
            {"decoding": decoding, "window": window},
            DEMO,
            overrides=mobile_train_overrides(
                NUM_STEPS,
                BATCH_SIZE,
                structure="one_step_discrete",
                head="discrete",
                discrete_decoding=decoding,
                window_size=window,
            ),
            eval=mobile_eval(EVAL_EPISODES, IMAGE_SIZE),
        )
        for decoding in DECODINGS
        for window in WINDOWS
    ]
    title = "one_step_discrete: decoding x window (mobile navigation, 72 episodes): closed-loop success"
    return mobile_grid_study("discrete_decoding", cells, title, ("decoding", "window"), SEEDS, EPISODES, IMAGE_SIZE)
