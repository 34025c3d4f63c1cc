"""Study: the interleaved window's attention, x history. Causal (RoboVLMs) vs streaming, window 2 / 4.

    vla-jax study --config configs/study_interleaved_attention.py --out runs/interleaved_attention   # CPU size

The question behind `VLAConfig.interleaved_attention`: under "streaming" a block's slots see only their own
block and its action token also the earlier blocks' image and text (vla_jax/vla.py's `streaming_mask`), so
nothing the robot caches goes stale when the window slides and a step decodes one block (bench/RESULTS.md
section 4e), where "causal" lets every slot read the whole window before it and the robot re-decodes the
window every step. Does giving the earlier blocks' cross-talk up cost closed-loop success?

Streaming needs rotary positions, so the backbone is configs/study_backbone.py's tiny LLaVA (2-layer CLIP
tower and Llama decoder, 32 wide, random initialisation: the best family of that study), not the demo's
Kosmos-2; everything else is its mobile grid: 300 steps of 16 on the 72 collected episodes, exported to the
torch runtime, 10 held-out worlds (eval seed 1), 3 seeds. docs/study.md gives the measured table.
"""

from pathlib import Path

from vla_jax.study.recipes import mobile_eval, mobile_grid_study, mobile_train_overrides
from vla_jax.study.spec import Cell, Study

BACKBONE_STUDY = str(Path(__file__).resolve().with_name("study_backbone.py"))
FAMILY = "llava"
ATTENTIONS = ("causal", "streaming")
WINDOWS = (2, 4)
SEEDS = (0, 1, 2)
NUM_STEPS, EVAL_EPISODES, EPISODES, IMAGE_SIZE = 300, 10, 72, 48


def get_study(arg=None) -> Study:
    cells = [
        Cell(
            f"{attention}_w{window}",
            {"attention": attention, "window": window},
            f"{BACKBONE_STUDY}:{FAMILY}",
            overrides=mobile_train_overrides(
                NUM_STEPS, structure="interleaved", head="mlp", interleaved_attention=attention, window_size=window
            ),
            eval=mobile_eval(EVAL_EPISODES, IMAGE_SIZE),
        )
        for attention in ATTENTIONS
        for window in WINDOWS
    ]
    title = f"interleaved ({FAMILY} tiny, from scratch): attention x window (mobile navigation, 72 episodes)"
    title += ": closed-loop success"
    return mobile_grid_study(
        "interleaved_attention", cells, title, ("attention", "window"), SEEDS, EPISODES, IMAGE_SIZE
    )
