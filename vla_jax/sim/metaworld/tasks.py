"""Meta-World task sets, the standard difficulty grouping and one fixed instruction per task.

Task names are Meta-World's own: MT10 and MT50 as `metaworld.env_dict` lists them
(MT10_V3, ALL_V3_ENVIRONMENTS), written out here because importing metaworld
imports MuJoCo and its GL libraries, which must stay out of processes that run
TensorFlow (vla_jax/sim/render_worker.py); tests/test_sim_metaworld.py checks
both lists against the installed package in a child process.

The difficulty grouping (easy 28, medium 11, hard 6, very hard 5 tasks) is the
one the published VLA numbers are reported by: the SmolVLA paper (Shukor et al.
2025, Table "Meta-World") and LeRobot's evaluation (huggingface/lerobot
`src/lerobot/envs/metaworld_config.json`, DIFFICULTY_TO_TASKS), which goes back
to Seo et al. 2022 ("Masked World Models for Visual Control", Appendix),
grouping the tasks by how hard they are for RL agents.

The instructions are the task descriptions of LeRobot's published Meta-World
dataset (lerobot/metaworld_mt50; TASK_DESCRIPTIONS in the same config file):
one fixed sentence per task, used unchanged in collection and evaluation.
"""

from __future__ import annotations

from vla_jax.errors import VLAJaxError

DIFFICULTY_GROUPS: dict[str, tuple[str, ...]] = {
    "easy": (
        "button-press-v3",
        "button-press-topdown-v3",
        "button-press-topdown-wall-v3",
        "button-press-wall-v3",
        "coffee-button-v3",
        "dial-turn-v3",
        "door-close-v3",
        "door-lock-v3",
        "door-open-v3",
        "door-unlock-v3",
        "drawer-close-v3",
        "drawer-open-v3",
        "faucet-close-v3",
        "faucet-open-v3",
        "handle-press-v3",
        "handle-press-side-v3",
        "handle-pull-v3",
        "handle-pull-side-v3",
        "lever-pull-v3",
        "plate-slide-v3",
        "plate-slide-back-v3",
        "plate-slide-back-side-v3",
        "plate-slide-side-v3",
        "reach-v3",
        "reach-wall-v3",
        "window-close-v3",
        "window-open-v3",
        "peg-unplug-side-v3",
    ),
    "medium": (
        "basketball-v3",
        "bin-picking-v3",
        "box-close-v3",
        "coffee-pull-v3",
        "coffee-push-v3",
        "hammer-v3",
        "peg-insert-side-v3",
        "push-wall-v3",
        "soccer-v3",
        "sweep-v3",
        "sweep-into-v3",
    ),
    "hard": ("assembly-v3", "hand-insert-v3", "pick-out-of-hole-v3", "pick-place-v3", "push-v3", "push-back-v3"),
    "very_hard": ("shelf-place-v3", "disassemble-v3", "stick-pull-v3", "stick-push-v3", "pick-place-wall-v3"),
}
GROUP_ORDER = ("easy", "medium", "hard", "very_hard")

INSTRUCTIONS: dict[str, str] = {
    "assembly-v3": "Pick up a nut and place it onto a peg",
    "basketball-v3": "Dunk the basketball into the basket",
    "bin-picking-v3": "Grasp the puck from one bin and place it into another bin",
    "box-close-v3": "Grasp the cover and close the box with it",
    "button-press-topdown-v3": "Press a button from the top",
    "button-press-topdown-wall-v3": "Bypass a wall and press a button from the top",
    "button-press-v3": "Press a button",
    "button-press-wall-v3": "Bypass a wall and press a button",
    "coffee-button-v3": "Push a button on the coffee machine",
    "coffee-pull-v3": "Pull a mug from a coffee machine",
    "coffee-push-v3": "Push a mug under a coffee machine",
    "dial-turn-v3": "Rotate a dial 180 degrees",
    "disassemble-v3": "Pick a nut out of a peg",
    "door-close-v3": "Close a door with a revolving joint",
    "door-lock-v3": "Lock the door by rotating the lock clockwise",
    "door-open-v3": "Open a door with a revolving joint",
    "door-unlock-v3": "Unlock the door by rotating the lock counter-clockwise",
    "hand-insert-v3": "Insert the gripper into a hole",
    "drawer-close-v3": "Push and close a drawer",
    "drawer-open-v3": "Open a drawer",
    "faucet-open-v3": "Rotate the faucet counter-clockwise",
    "faucet-close-v3": "Rotate the faucet clockwise",
    "hammer-v3": "Hammer a screw on the wall",
    "handle-press-side-v3": "Press a handle down sideways",
    "handle-press-v3": "Press a handle down",
    "handle-pull-side-v3": "Pull a handle up sideways",
    "handle-pull-v3": "Pull a handle up",
    "lever-pull-v3": "Pull a lever down 90 degrees",
    "peg-insert-side-v3": "Insert a peg sideways",
    "pick-place-wall-v3": "Pick a puck, bypass a wall and place the puck",
    "pick-out-of-hole-v3": "Pick up a puck from a hole",
    "reach-v3": "Reach a goal position",
    "push-back-v3": "Push the puck to a goal",
    "push-v3": "Push the puck to a goal",
    "pick-place-v3": "Pick and place a puck to a goal",
    "plate-slide-v3": "Slide a plate into a cabinet",
    "plate-slide-side-v3": "Slide a plate into a cabinet sideways",
    "plate-slide-back-v3": "Get a plate from the cabinet",
    "plate-slide-back-side-v3": "Get a plate from the cabinet sideways",
    "peg-unplug-side-v3": "Unplug a peg sideways",
    "soccer-v3": "Kick a soccer into the goal",
    "stick-push-v3": "Grasp a stick and push a box using the stick",
    "stick-pull-v3": "Grasp a stick and pull a box with the stick",
    "push-wall-v3": "Bypass a wall and push a puck to a goal",
    "reach-wall-v3": "Bypass a wall and reach a goal",
    "shelf-place-v3": "Pick and place a puck onto a shelf",
    "sweep-into-v3": "Sweep a puck into a hole",
    "sweep-v3": "Sweep a puck off the table",
    "window-open-v3": "Push and open a window",
    "window-close-v3": "Push and close a window",
}

DIFFICULTY: dict[str, str] = {task: group for group, tasks in DIFFICULTY_GROUPS.items() for task in tasks}

MT10 = (
    "reach-v3",
    "push-v3",
    "pick-place-v3",
    "door-open-v3",
    "drawer-open-v3",
    "drawer-close-v3",
    "button-press-topdown-v3",
    "peg-insert-side-v3",
    "window-open-v3",
    "window-close-v3",
)
MT50 = (
    "assembly-v3",
    "basketball-v3",
    "bin-picking-v3",
    "box-close-v3",
    "button-press-topdown-v3",
    "button-press-topdown-wall-v3",
    "button-press-v3",
    "button-press-wall-v3",
    "coffee-button-v3",
    "coffee-pull-v3",
    "coffee-push-v3",
    "dial-turn-v3",
    "disassemble-v3",
    "door-close-v3",
    "door-lock-v3",
    "door-open-v3",
    "door-unlock-v3",
    "hand-insert-v3",
    "drawer-close-v3",
    "drawer-open-v3",
    "faucet-open-v3",
    "faucet-close-v3",
    "hammer-v3",
    "handle-press-side-v3",
    "handle-press-v3",
    "handle-pull-side-v3",
    "handle-pull-v3",
    "lever-pull-v3",
    "pick-place-wall-v3",
    "pick-out-of-hole-v3",
    "pick-place-v3",
    "plate-slide-v3",
    "plate-slide-side-v3",
    "plate-slide-back-v3",
    "plate-slide-back-side-v3",
    "peg-insert-side-v3",
    "peg-unplug-side-v3",
    "soccer-v3",
    "stick-push-v3",
    "stick-pull-v3",
    "push-v3",
    "push-wall-v3",
    "push-back-v3",
    "reach-v3",
    "reach-wall-v3",
    "shelf-place-v3",
    "sweep-into-v3",
    "sweep-v3",
    "window-open-v3",
    "window-close-v3",
)


def mt50() -> list[str]:
    """All 50 v3 task names, in Meta-World's order."""
    return list(MT50)


def mt10() -> list[str]:
    return list(MT10)


TASKS_HELP = "mt10, mt50, a difficulty group (easy, medium, hard, very_hard) or comma-separated v3 task names"


def resolve_tasks(spec: str) -> list[str]:
    """`mt10`, `mt50`, a difficulty group (`easy`, `medium`, `hard`, `very_hard`) or comma-separated task names."""
    spec = spec.strip()
    if spec == "mt10":
        return mt10()
    if spec == "mt50":
        return mt50()
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        expanded = list(DIFFICULTY_GROUPS[part]) if part in DIFFICULTY_GROUPS else [part]
        names.extend(n for n in expanded if n not in names)
    unknown = [n for n in names if n not in INSTRUCTIONS]
    if unknown or not names:
        raise VLAJaxError(
            f"--tasks {spec!r}: unknown task(s) {unknown}; use mt10, mt50, a difficulty group "
            f"({', '.join(GROUP_ORDER)}) or v3 task names such as reach-v3,push-v3"
        )
    return names


# Episode seeds: collection and evaluation draw from disjoint ranges, keyed by the task's
# MT50 index (not its position in --tasks), so a task's episodes do not depend on its company.
_SEED_PURPOSES = {"collect": 0, "eval": 1 << 31}
_SEED_STRIDE = 100_000  # attempts per (base seed, task) stay below this


def episode_seed(purpose: str, base_seed: int, task: str, k: int) -> int:
    """Seed of the k-th episode of `task` for `purpose` ("collect" or "eval"); below 2**32 as numpy needs."""
    if not 0 <= k < _SEED_STRIDE:
        raise VLAJaxError(f"episode {k} of {task}: at most {_SEED_STRIDE} episodes per task and seed")
    if not 0 <= base_seed < 200:
        raise VLAJaxError(f"--seed {base_seed}: choose 0 <= seed < 200 (seeds of the two purposes must not overlap)")
    task_index = sorted(INSTRUCTIONS).index(task)
    return _SEED_PURPOSES[purpose] + (base_seed * len(INSTRUCTIONS) + task_index) * _SEED_STRIDE + k
