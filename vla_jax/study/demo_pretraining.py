"""`vla-jax demo --pretrained`: the cross-embodiment pre-training stages, cached under OUT/pretrain.

The same commands as the data-strategy study's shared steps (configs/study_data.py: `xemb_commands`,
`tokenizer_command`, `pretrain_command`, at its CPU size), each run as the `vla-jax` subcommand a user
would type; a stage whose output is complete is reused, so only the first `--pretrained` run pays for
collecting the set and pre-training. Returns the pre-training workdir and the tokenizer the post-training
stage starts from.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from vla_jax.errors import VLAJaxError

STUDY_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "study_data.py"
_STEP = re.compile(r"\{step:([A-Za-z0-9_.-]+)\}")


def _study_config():
    spec = importlib.util.spec_from_file_location("vla_jax_study_data", STUDY_CONFIG)
    if spec is None or spec.loader is None or not STUDY_CONFIG.is_file():
        raise VLAJaxError(f"demo --pretrained needs {STUDY_CONFIG} (the cross-embodiment recipe); restore it")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fill(argv: list[str], folder: Path, own: str) -> list[str]:
    """The study templates with the demo's folders: {dir} = folder/own, {step:NAME} = folder/NAME."""
    return [_STEP.sub(lambda m: str(folder / m.group(1)), a.replace("{dir}", str(folder / own))) for a in argv]


def stages(stage: Callable, cli: Callable[[list[str]], None], folder: Path, target_rlds: Path, image_size: int):
    """Run (or reuse) the set, the tokenizer and the pre-training; -> (pre-training workdir, tokenizer dir)."""
    recipe = _study_config()
    size = dict(recipe.SIZES["cpu"], image_size=image_size)
    commands, xemb = recipe.xemb_commands(size)
    folder.mkdir(parents=True, exist_ok=True)

    def run(name: str, argv: list[str], done: Path) -> None:
        def go():
            shutil.rmtree(folder / name, ignore_errors=True)  # a half-written stage starts over
            cli(_fill(argv, folder, name))
            done.touch()

        stage(f"pretrain:{name}", done.is_file(), go)

    for name, argv in commands:
        run(name, argv, folder / f"{name}.done")
    xemb_dirs = _fill([xemb], folder, "")[0]
    tokenizer = folder / "tokenizer"
    run("tokenizer", recipe.tokenizer_command(str(target_rlds), xemb_dirs), folder / "tokenizer.done")
    workdir = folder / "workdir"
    run("workdir", recipe.pretrain_command(size, xemb_dirs, str(tokenizer)), folder / "workdir.done")
    return workdir, tokenizer
