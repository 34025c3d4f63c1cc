"""One Meta-World v3 task as the published VLA protocol runs it, with a fast renderer.

Construction follows LeRobot's Meta-World environment (huggingface/lerobot
`src/lerobot/envs/metaworld.py`), the protocol behind the published MT50 numbers:

- the task's environment as `metaworld.MT1(task, seed=42)` sets it up (its
  first train task: the goal observable in the 39-D state, which the scripted
  policies read). We build it from Meta-World's goal-observable class of the
  task, which sets the same and is 6x cheaper than MT1's 50 sampled goals
  (0.15 s vs 0.9 s a task); tests/test_sim_metaworld.py checks both give the
  same observations;
- then the random reset vector is unfrozen and seeded (`_freeze_rand_vec =
  False`, `seeded_rand_vec = True`): every `reset(seed)` draws new object and
  goal positions from `seed`, so episodes differ and are reproducible;
- the `corner2` camera moved to (0.75, 0.075, 0.7) (LeRobot's placement; its
  orientation stays Meta-World's) and its image turned 180 degrees, as LeRobot
  does, because that camera renders upside down and mirrored;
- the policy sees `obs[:4]` (end-effector xyz and the gripper opening in
  [0, 1], 1 = open) and sends 4-D actions [dx, dy, dz, gripper] in [-1, 1], the
  gripper an effort with -1 = open and +1 = close;
- `info["success"]` is the success signal; Meta-World truncates an episode at
  `max_path_length` = 500 steps (the limit `lerobot-eval` uses for Meta-World).

Rendering: Meta-World's own `env.render()` goes through gymnasium's
MujocoRenderer with shadows and reflections; we render with a plain
`mujoco.Renderer` with both switched off, several times faster on a CPU
(software EGL). Collection and evaluation both use this class, so a policy
is evaluated on exactly the images it was trained on.

Build `MetaWorldTaskEnv` only in a process without TensorFlow (`worker.py` does):
Mesa's llvmpipe and TensorFlow cannot share a process (vla_jax/sim/render_worker.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vla_jax.errors import VLAJaxError
from vla_jax.sim.metaworld.tasks import INSTRUCTIONS
from vla_jax.sim.scene import import_mujoco, make_renderer

MT1_SEED = 42  # LeRobot: metaworld.MT1(task, seed=42); the set-up make_metaworld_env reproduces
CORNER2_POS = (0.75, 0.075, 0.7)  # LeRobot: env.model.cam_pos[2] (corner2) = [0.75, 0.075, 0.7]
FLIPPED_CAMERAS = ("corner2",)  # LeRobot: np.flip(image, (0, 1)) for corner2
CAMERAS = ("corner2", "corner", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")
MAX_PATH_LENGTH = 500  # Meta-World's episode limit (SawyerXYZEnv.max_path_length), checked at construction
STATE_DIM = 4
ACTION_DIM = 4


class FastRenderer:
    """`mujoco.Renderer` of one camera, shadows and reflections off; frames oriented as LeRobot's."""

    def __init__(self, model, size: int, camera: str):
        mj: Any = import_mujoco()  # the mujoco module (its bindings carry no type stubs)
        try:
            model.camera(camera)
        except KeyError:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise VLAJaxError(
                f"--camera {camera!r}: not a camera of this Meta-World scene; choose one of {names}"
            ) from None
        # The offscreen buffer must hold the frame; Meta-World's XML sizes it for its own renders.
        model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), size)
        model.vis.global_.offheight = max(int(model.vis.global_.offheight), size)
        self.renderer = make_renderer(model, size, size)
        self.renderer.scene.flags[mj.mjtRndFlag.mjRND_SHADOW] = 0
        self.renderer.scene.flags[mj.mjtRndFlag.mjRND_REFLECTION] = 0
        self.camera = camera
        self.flip = camera in FLIPPED_CAMERAS

    def render(self, data) -> np.ndarray:
        self.renderer.update_scene(data, camera=self.camera)
        frame = self.renderer.render()
        return np.ascontiguousarray(frame[::-1, ::-1] if self.flip else frame)

    def close(self) -> None:
        self.renderer.close()


@dataclasses.dataclass
class Observation:
    frame: np.ndarray  # uint8 [S, S, 3] RGB
    state: np.ndarray  # float32 [4]: end-effector xyz, gripper opening in [0, 1]
    success: bool = False
    truncated: bool = False


def make_metaworld_env(task: str, camera: str = "corner2"):
    """The raw Meta-World environment of `task`, set up as LeRobot does (module docstring)."""
    import_mujoco()  # picks the headless GL platform before metaworld imports mujoco
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE

    if task not in INSTRUCTIONS:
        raise VLAJaxError(f"Meta-World task {task!r} is unknown; use a v3 task name such as reach-v3")
    env = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[f"{task}-goal-observable"]()
    if camera == "corner2":
        env.model.cam_pos[env.model.camera("corner2").id] = CORNER2_POS
    env._freeze_rand_vec = False  # noqa: SLF001 -- Meta-World's switch for per-reset randomisation
    env.seeded_rand_vec = True
    return env


class MetaWorldTaskEnv:
    """reset(seed) -> Observation; step(action) -> Observation; expert_action() from `metaworld.policies`."""

    def __init__(self, task: str, image_size: int = 224, camera: str = "corner2", render: bool = True):
        import_mujoco()  # before metaworld imports mujoco: the GL platform is chosen at import
        from metaworld.policies import ENV_POLICY_MAP

        if image_size < 8:
            raise VLAJaxError(f"--image-size {image_size}: must be at least 8 pixels")
        self.task, self.image_size, self.camera = task, int(image_size), camera
        self.env = make_metaworld_env(task, camera)
        # render=False: physics only (e.g. measuring the expert), no GL context; frames are empty.
        self.renderer = FastRenderer(self.env.model, self.image_size, camera) if render else None
        self.expert = ENV_POLICY_MAP[task]()
        self.max_steps = int(self.env.max_path_length)
        if self.max_steps != MAX_PATH_LENGTH:
            raise VLAJaxError(
                f"metaworld's {task} has max_path_length {self.max_steps}, not {MAX_PATH_LENGTH}; "
                "install the pinned metaworld==3.1.1"
            )
        self._obs: np.ndarray | None = None

    def _observe(self, obs, success=False, truncated=False) -> Observation:
        self._obs = obs
        frame = self.renderer.render(self.env.data) if self.renderer else np.zeros((0, 0, 3), np.uint8)
        return Observation(frame, np.asarray(obs[:STATE_DIM], np.float32), bool(success), bool(truncated))

    def reset(self, seed: int) -> Observation:
        self.env.seed(int(seed))
        obs, _ = self.env.reset()
        return self._observe(obs)

    def step(self, action) -> Observation:
        action = np.asarray(action, np.float64).reshape(-1)
        if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
            raise VLAJaxError(f"Meta-World action must be 4 finite numbers [dx, dy, dz, gripper], got {action}")
        obs, _, _, truncated, info = self.env.step(np.clip(action, -1.0, 1.0))
        return self._observe(obs, info["success"], truncated)

    def expert_action(self) -> np.ndarray:
        """The scripted expert's action for the current state, clipped to the action space."""
        if self._obs is None:
            raise VLAJaxError(f"{self.task}: expert_action() before reset(seed); reset the environment first")
        return np.clip(self.expert.get_action(self._obs), -1.0, 1.0).astype(np.float32)

    def close(self) -> None:
        if self.renderer:
            self.renderer.close()
        self.env.close()
