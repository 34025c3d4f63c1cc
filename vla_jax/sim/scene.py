"""The MuJoCo world of the users' task, written as MJCF by the project itself.

One model per episode: building it from a few hundred bytes of XML takes about
a millisecond, and it lets every size, colour and light of the sampled
`Layout` be a plain XML attribute rather than a patched model array.

Headless rendering needs an OpenGL platform *before* `mujoco` is imported
(MuJoCo reads ``MUJOCO_GL`` once, at import). `import_mujoco()` honours a
``MUJOCO_GL`` the user set; otherwise it probes EGL then OSMesa in a
subprocess (a failed GL init can abort the process, so we never probe in
ours) and fails with one line that says which packages to install.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

from vla_jax.errors import VLAJaxError
from vla_jax.sim.embodiments import EMBODIMENTS, TARGET, Embodiment
from vla_jax.sim.scenarios import Layout

ROBOT_RADIUS = 0.17
MAX_OBSTACLES = 2
_GL_CANDIDATES = ("egl", "osmesa")
_GL_HELP = (
    "install an OpenGL platform for headless rendering (Debian/Ubuntu: "
    "`apt-get install -y libegl1 libgl1-mesa-dri` for EGL or `apt-get install -y libosmesa6` for OSMesa) "
    "or set MUJOCO_GL to one that works here"
)
_PROBE = (
    "import mujoco\n"
    "m = mujoco.MjModel.from_xml_string('<mujoco><worldbody><geom size=\"1\"/></worldbody></mujoco>')\n"
    "r = mujoco.Renderer(m, 8, 8); d = mujoco.MjData(m); r.update_scene(d); r.render(); r.close()\n"
)


@functools.lru_cache(maxsize=1)
def pick_gl_backend() -> str:
    """The MUJOCO_GL value to use: the user's, or the first candidate that renders here."""
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        return chosen
    if "mujoco" in sys.modules:
        # Too late to choose: MuJoCo already picked its (default) platform at import.
        return ""
    tried = []
    for backend in _GL_CANDIDATES:
        env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
        try:
            proc = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            tried.append(f"{backend}: timed out")
            continue
        if proc.returncode == 0:
            return backend
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        tried.append(f"{backend}: {last}")
    raise VLAJaxError(f"no headless OpenGL backend works ({'; '.join(tried)}); {_GL_HELP}")


def import_mujoco():
    """Import `mujoco` with a working headless GL platform selected first."""
    if "mujoco" not in sys.modules:
        backend = pick_gl_backend()
        if backend:
            os.environ["MUJOCO_GL"] = backend
            if backend in ("egl", "osmesa"):
                os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    try:
        import mujoco
    except (ImportError, RuntimeError, OSError) as err:  # e.g. an invalid MUJOCO_GL, a missing libGL
        raise VLAJaxError(
            f"cannot import MuJoCo with MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r} ({err}); {_GL_HELP}"
        ) from err
    return mujoco


def make_renderer(model, height: int, width: int):
    """`mujoco.Renderer`, with a one-line error naming MUJOCO_GL when the GL context fails."""
    mujoco = import_mujoco()
    try:
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as err:  # GL failures surface as many exception types
        raise VLAJaxError(
            f"MuJoCo could not open an OpenGL context with MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r} "
            f"({type(err).__name__}: {err}); {_GL_HELP}"
        ) from err


def _rgba(values) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def build_mjcf(layout: Layout, image_size: int = 224, embodiment: Embodiment | None = None) -> str:
    """MJCF of one world: floor, the robot (kinematic base + front camera), basket, obstacles.

    `embodiment` places the camera (vla_jax.sim.embodiments; default the users' robot).
    """
    embodiment = embodiment or EMBODIMENTS[TARGET]
    lx, ly, lz = layout.light_dir
    diffuse = layout.light_diffuse
    tx, ty = layout.target_xy
    # Fixed structure: MAX_OBSTACLES slots, each a box and a pot geom, the unused
    # ones hidden under the floor. Every world then compiles to a model of the same
    # shape, so `env.py` can reuse one GL context by copying the varying arrays.
    obstacles = []
    for i in range(MAX_OBSTACLES):
        o = layout.obstacles[i] if i < len(layout.obstacles) else None
        for kind in ("box", "pot"):
            if o is not None and o.kind == kind:
                pos, rgba = f"{o.x:.4f} {o.y:.4f} {o.height / 2:.4f}", _rgba(o.rgba)
                size = (
                    f"{o.half_x:.4f} {o.height / 2:.4f} 0"
                    if kind == "pot"
                    else f"{o.half_x:.4f} {o.half_y:.4f} {o.height / 2:.4f}"
                )
            else:
                pos, rgba, size = "0 0 -5", "0 0 0 0", "0.1 0.1 0.1"
            gtype = "cylinder" if kind == "pot" else "box"
            obstacles.append(
                f'<geom name="obstacle{i}_{kind}" type="{gtype}" size="{size}" pos="{pos}" rgba="{rgba}"/>'
            )
    # Camera (Embodiment.camera_xml): MuJoCo cameras look along their -z; x right (= world -y), y up;
    # the users' robot pitches it 15 degrees down so the floor near the robot is in view.
    return f"""
<mujoco model="vla_jax_mobile_nav">
  <visual>
    <global offwidth="{image_size}" offheight="{image_size}"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.2 0.2 0.2" specular="0 0 0"/>
    <quality shadowsize="0"/>
  </visual>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.75 0.8 0.85" rgb2="0.45 0.5 0.55"
             width="64" height="64"/>
    <texture name="floor" type="2d" builtin="checker" rgb1="1 1 1" rgb2="0.82 0.82 0.82" width="128" height="128"/>
    <material name="floor" texture="floor" texrepeat="32 32" rgba="{_rgba(layout.floor_rgba)}"/>
  </asset>
  <worldbody>
    <light directional="true" pos="0 0 4" dir="{lx:.3f} {ly:.3f} {lz:.3f}"
           diffuse="{diffuse:.3f} {diffuse:.3f} {diffuse:.3f}" castshadow="false"/>
    <geom name="floor" type="plane" size="8 8 0.1" pos="2 0 0" material="floor"/>
    <body name="base" pos="0 0 0">
      <joint name="base_x" type="slide" axis="1 0 0"/>
      <joint name="base_y" type="slide" axis="0 1 0"/>
      <joint name="base_yaw" type="hinge" axis="0 0 1"/>
      <geom name="chassis" type="cylinder" size="{ROBOT_RADIUS} 0.06" pos="0 0 0.08" rgba="0.15 0.15 0.18 1"/>
      {embodiment.camera_xml()}
    </body>
    <body name="basket" pos="{tx:.4f} {ty:.4f} 0">
      <geom name="basket_wall" type="cylinder" size="{layout.target_radius:.4f} 0.11" pos="0 0 0.11"
            rgba="{_rgba(layout.target_rgba)}"/>
      <geom name="basket_rim" type="cylinder" size="{layout.target_radius + 0.015:.4f} 0.01" pos="0 0 0.22"
            rgba="0.3 0.3 0.3 1"/>
    </body>
    {"".join(obstacles)}
  </worldbody>
</mujoco>
"""
