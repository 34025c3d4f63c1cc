"""`vla-jax` command line: one subcommand per thing a user can do.

One naming rule: subcommand `NAME` is the module `vla_jax.commands.NAME` (dashes
become underscores). A command module defines `add_arguments(parser)` and
`run(args) -> int`; it stays thin and calls the code it drives. Only the chosen
module is imported, so `--help` stays fast and a broken optional subsystem cannot
take the other subcommands down.

Arguments the subcommand's parser does not declare are an error, unless the
module sets ``ACCEPTS_EXTRA_ARGS = True``: then they arrive as
``args.extra_args`` (``vla-jax train`` takes ``--config.KEY=VALUE`` that way).

An ``--out`` that exists and is not a folder is refused before the command runs, unless the
module sets ``OUT_IS_A_FILE = True`` (its ``--out`` names a file it rewrites, e.g. a PNG).

A module that looks datasets up by name sets ``USES_DATASET_REGISTRY = True``: its
parser gets ``--registry FILE`` (repeatable), and the files are loaded
(`data_pipelines.registry.load_user_registry`) before ``run``, so a user's own
datasets and mixtures are known to every command the same way.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from data_pipelines import registry
from data_pipelines.errors import DataError
from vla_jax import hugepages
from vla_jax.errors import VLAJaxError
from vla_runtime.errors import InputError, RuntimeConfigError

# name -> one-line help (the module is vla_jax.commands.<name with _ for ->)
SUBCOMMANDS: dict[str, str] = {
    "convert-hf": "Convert a Hugging Face checkpoint folder (Kosmos-2, PaliGemma, SmolVLM, CLIP + Kosmos-2) to params.",
    "verify-hf": "Check our Flax backbone against the Hugging Face torch model on random inputs.",
    "train": "Train or post-train a VLA from a config file (resumes an existing workdir).",
    "stats": "Compute and print action statistics of a dataset or mixture.",
    "convert-episodes": "Convert a folder of HDF5 mobile episodes or a LeRobot dataset to an RLDS (tfds) dataset.",
    "inspect-data": "Print batch shapes/statistics of a mixture and save an image grid.",
    "export": "Export a training workdir to a torch runtime folder (vla_runtime).",
    "sim-collect": "Collect scripted-expert episodes: the MuJoCo mobile-navigation scene (HDF5) or Meta-World (RLDS).",
    "sim-eval": "Closed-loop evaluation of an export or a workdir in the MuJoCo scene or on Meta-World.",
    "eval-offline": "Offline per-frame metrics (MAE, RMSE, success@0.1/0.2, direction match).",
    "tokenizer": "Train a byte-level BPE tokenizer on a dataset's instructions (for a from-scratch model).",
    "demo": "The main job end to end: collect, convert, post-train, export, drive.",
    "study": "A grid of train + export + closed-loop eval runs over seeds, resumable, reported as tables.",
}
USER_ERRORS = (VLAJaxError, DataError, RuntimeConfigError, InputError)


def command_module(name: str) -> str:
    return "vla_jax.commands." + name.replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vla-jax",
        description="JAX/Flax vision-language-action policies: train, post-train, export, evaluate.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def parse_command_args(name: str, module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"vla-jax {name}", description=SUBCOMMANDS[name])
    module.add_arguments(parser)
    if getattr(module, "USES_DATASET_REGISTRY", False):
        parser.add_argument(
            "--registry",
            action="append",
            default=[],
            metavar="FILE",
            help="register your own datasets/mixtures first (.py, .toml or .json; repeatable; "
            "see data_pipelines/registry.py)",
        )
    args, extra = parser.parse_known_args(argv)
    if getattr(module, "ACCEPTS_EXTRA_ARGS", False):
        args.extra_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _run(module, args: argparse.Namespace) -> int:
    for path in getattr(args, "registry", None) or []:
        registry.load_user_registry(path)
    return int(module.run(args) or 0)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the console script: a fresh process, so its malloc can still be configured
        hugepages.reexec_with_hugepage_malloc()
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
    module_name = command_module(name)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            print(f"vla-jax {name}: not available in this build ({module_name} is missing)", file=sys.stderr)
            return 2
        raise
    args = parse_command_args(name, module, argv[1:])
    out = None if getattr(module, "OUT_IS_A_FILE", False) else getattr(args, "out", None)
    if out is not None and os.path.exists(out) and not os.path.isdir(out):
        print(
            f"vla-jax {name}: error: --out {out} is a file, not a folder; pass a folder (created when missing)",
            file=sys.stderr,
        )
        return 2
    if debug:
        return _run(module, args)
    try:
        return _run(module, args)
    except USER_ERRORS as err:
        print(f"vla-jax {name}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the file system said no (exists, permission, read-only, full): say where
        where = f" ({err.filename})" if err.filename and str(err.filename) not in str(err) else ""
        print(
            f"vla-jax {name}: error: {err}{where}; check the path and its permissions (--debug for the traceback)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"vla-jax {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
