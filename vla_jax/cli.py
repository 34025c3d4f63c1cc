"""`vla-jax` command line: one subcommand per thing a user can do.

Subcommands live next to the code they drive; this file only dispatches. Each
entry names a module that defines `add_arguments(parser)` and `run(args) -> int`
so that importing the CLI (and `--help`) stays fast and a broken optional
subsystem cannot take the other subcommands down.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "convert-hf": (
        "vla_jax.convert.commands_convert",
        "Convert a Hugging Face checkpoint folder (Kosmos-2, PaliGemma, SmolVLM, CLIP + Kosmos-2) to vla-jax params.",
    ),
    "verify-hf": (
        "vla_jax.convert.commands_verify",
        "Check our Flax backbone against the Hugging Face torch model on random inputs.",
    ),
    "train": ("vla_jax.train.commands", "Train or post-train a VLA from a config file (resumes an existing workdir)."),
    "stats": ("data_pipelines.commands_stats", "Compute and print action statistics of a dataset or mixture."),
    "convert-episodes": (
        "data_pipelines.commands_convert",
        "Convert a folder of HDF5 mobile episodes to an RLDS (tfds) dataset.",
    ),
    "inspect-data": (
        "data_pipelines.commands_inspect",
        "Print batch shapes/statistics of a mixture and save an image grid.",
    ),
    "export": ("vla_jax.export.commands", "Export a training workdir to a torch runtime folder (vla_runtime)."),
    "sim-collect": (
        "vla_jax.sim.commands_collect",
        "Collect scripted-expert episodes in the MuJoCo mobile-navigation scene (HDF5).",
    ),
    "sim-eval": ("vla_jax.sim.commands_eval", "Closed-loop evaluation of an export or a workdir in the MuJoCo scene."),
    "eval-offline": (
        "vla_jax.sim.commands_offline",
        "Offline per-frame metrics (MAE, RMSE, success@0.1/0.2, direction match).",
    ),
    "demo": ("vla_jax.demo", "The main job end to end: collect, convert, post-train, export, drive."),
}


def _user_error_types() -> tuple[type[BaseException], ...]:
    from data_pipelines.errors import DataError
    from vla_jax.errors import VLAJaxError

    return (VLAJaxError, DataError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vla-jax",
        description="JAX/Flax vision-language-action policies: train, post-train, export, evaluate.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    debug = "--debug" in argv or os.environ.get("VLA_JAX_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    name = argv[0]
    if name not in SUBCOMMANDS:
        parser.error(f"unknown command {name!r}; choose one of: {', '.join(SUBCOMMANDS)}")
    module_name, help_text = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            print(f"vla-jax {name}: not available in this build ({module_name} is missing)", file=sys.stderr)
            return 2
        raise
    sub_parser = argparse.ArgumentParser(prog=f"vla-jax {name}", description=help_text)
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    if debug:
        return int(module.run(args) or 0)
    try:
        return int(module.run(args) or 0)
    except _user_error_types() as err:
        print(f"vla-jax {name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vla-jax {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
