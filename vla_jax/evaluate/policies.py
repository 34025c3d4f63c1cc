"""Open what `sim-eval --policy PATH` names: an export folder (torch runtime) or a training workdir (JAX).

Both come back as an object with ``reset(instruction)`` and ``step(image) ->
[C, A]`` in robot units, which is all `evaluate.py` needs.
"""

from __future__ import annotations

import json
from pathlib import Path

from vla_jax.errors import VLAJaxError
from vla_jax.evaluate.closed_loop import Policy as ClosedLoopPolicy
from vla_jax.evaluate.jax_policy import JaxWorkdirPolicy
from vla_runtime.policy_io import Preprocessing

EXPORT_FILES = ("config.json", "model.safetensors", "preprocessing.json")


def is_export_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in EXPORT_FILES)


def is_workdir(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "checkpoints").is_dir()


def _export_input_channel_order(path: Path) -> str:
    pre = Preprocessing.from_dict(
        json.loads((path / "preprocessing.json").read_text()), str(path / "preprocessing.json")
    )
    return pre.input_channel_order


def load_policy(
    path: str | Path,
    *,
    device: str = "cpu",
    step: int | None = None,
    input_channel_order: str = "auto",
    torch_threads: int | None = 1,
) -> tuple[ClosedLoopPolicy, str, str]:
    """(policy, channel order to feed it, "export" | "workdir").

    torch_threads: intra-op threads for an export on CPU. One is the default
    because a small policy gains nothing from more, and on a busy machine torch's
    spinning thread pool made each step 20x slower (measured: 220 ms vs 10 ms
    per step on 2 shared cores).
    """
    path = Path(path)
    if not path.is_dir():
        raise VLAJaxError(f"--policy {path} is not a folder; pass an export folder (vla-jax export) or a workdir")
    if is_export_dir(path):
        try:
            from vla_runtime import Policy
        except ImportError as err:
            raise VLAJaxError(
                f"--policy {path} is an export folder but the torch runtime is not importable ({err}); "
                "install it with `pip install -e ./runtime`"
            ) from err
        order = _export_input_channel_order(path) if input_channel_order == "auto" else input_channel_order
        if torch_threads and device == "cpu":
            import torch

            torch.set_num_threads(int(torch_threads))
        return Policy.load(str(path), device=device), order, "export"
    if is_workdir(path):
        order = "RGB" if input_channel_order == "auto" else input_channel_order
        return JaxWorkdirPolicy.load(path, step=step), order, "workdir"
    raise VLAJaxError(
        f"--policy {path} is neither an export folder (needs {', '.join(EXPORT_FILES)}) nor a training workdir "
        "(needs config.json and checkpoints/); run `vla-jax export` or `vla-jax train` first"
    )
