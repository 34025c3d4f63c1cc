"""User-given names and folders: validated before anything is written, replaced atomically.

Every writer that joins a user-given name onto a user-given folder (``--out`` + ``--name``)
or replaces a folder (``--overwrite``) uses these, so a name can never point outside ``--out``
(``../x``, ``/abs``, ``a/b``) and an interrupted replace never leaves the old data deleted
and the new data half-written.

    name = safe_name(args.name, "--name")            # one plain path component, or DataError
    out = output_dir(args.out, "--out")              # a folder (created), not a file, writable
    final = inside(out, out / name / "1.0.0")        # resolved, and under out
    replace_dir(staged, final)                       # old data stays until the new is complete
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from data_pipelines.errors import DataError

# One path component of letters, digits, '_', '-', '.'; starting with a letter or digit (so never
# '.', '..', a hidden file or something an option parser takes for a flag).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# tfds dataset names additionally follow Python identifiers (tfds.core.naming).
DATASET_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")


def safe_name(
    name: str,
    what: str,
    pattern: re.Pattern = NAME_RE,
    allowed: str = "letters, digits, '_', '-' and '.', starting with a letter or digit",
) -> str:
    """``name`` if it is one plain path component; else `DataError` naming ``what`` (the flag)."""
    if not isinstance(name, str) or not pattern.match(name) or ".." in name:
        raise DataError(f"{what} {name!r} is not a plain name: use {allowed} (no '/', '..' or spaces)")
    return name


def safe_dataset_name(name: str, what: str = "--name") -> str:
    return safe_name(name, what, DATASET_NAME_RE, "letters, digits and '_', starting with a letter (a tfds name)")


def output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """The folder ``path`` (created when missing); a file there, or a folder we cannot write, is a `DataError`."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise DataError(f"{what} {out} is a file, not a folder; pass a folder (it is created when missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(
            f"{what} {out} cannot be created ({err.strerror or err}); pick a folder you can write to"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise DataError(f"{what} {out} is not writable; pick a folder you can write to")
    return out


def inside(base: str | os.PathLike, path: str | os.PathLike) -> Path:
    """``path`` resolved, after checking it lies under ``base`` (symlinks followed)."""
    root, target = Path(base).resolve(), Path(path).resolve()
    if target != root and root not in target.parents:
        raise DataError(f"{path} resolves to {target}, outside {root}; refusing to write or delete there")
    return target


def replace_dir(staged: str | os.PathLike, final: str | os.PathLike) -> None:
    """Moves the complete folder ``staged`` to ``final``, replacing what is there, without a window
    in which neither exists: the old folder is renamed aside, the new one renamed in, then the old
    one deleted. If the second rename fails, the old folder is put back. Both must be on one filesystem
    (callers stage next to ``final``)."""
    staged, final = Path(staged), Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    try:
        os.replace(staged, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
