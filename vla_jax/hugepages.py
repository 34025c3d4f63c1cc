"""Transparent huge pages for glibc malloc, set before the process allocates anything that matters.

Why: XLA:CPU gives every executable run fresh temporary buffers, and glibc hands large ones back to the
kernel when they are freed, so every train step touches new 4 KiB pages: configs/demo.py's step took
22,000 minor page faults and 55 ms of kernel time per ~80 ms step (2-core development machine,
2026-12-02). `glibc.malloc.hugetlb=1` (glibc >= 2.35) makes malloc ask for transparent huge pages
(madvise), which the kernel's default `madvise` mode then grants: 530 faults and 16-18 ms of kernel time
per step, bench/RESULTS.md section 1d. glibc reads the tunable only at process start, hence the re-exec.
"""

from __future__ import annotations

import os
import platform
import sys

TUNABLE = "glibc.malloc.hugetlb=1"
ENV = "GLIBC_TUNABLES"


def with_hugepage_malloc(env: dict[str, str]) -> dict[str, str]:
    """`env` with the tunable added, unless it already sets `glibc.malloc.hugetlb` (the user's choice wins)."""
    current = env.get(ENV, "")
    if "glibc.malloc.hugetlb" in current:
        return dict(env)
    return {**env, ENV: f"{current}:{TUNABLE}" if current else TUNABLE}


def reexec_with_hugepage_malloc() -> None:
    """Re-run this process with the tunable in its environment (Linux with glibc only; once: the new process
    sees it set). `VLA_JAX_NO_HUGEPAGES=1` opts out."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or os.environ.get("VLA_JAX_NO_HUGEPAGES"):
        return
    env = with_hugepage_malloc(dict(os.environ))
    if env.get(ENV) == os.environ.get(ENV):
        return
    # orig_argv keeps `-m vla_jax.cli` (argv[0] would be the module's file, run as a script).
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
