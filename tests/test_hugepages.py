"""The console script re-runs itself once with glibc's huge-page malloc tunable (vla_jax/hugepages.py)."""

import os
import platform
import subprocess
import sys

import pytest

from vla_jax.hugepages import TUNABLE, with_hugepage_malloc

PROBE = (
    "import os, sys; from vla_jax import hugepages; "
    "print('start', os.environ.get('GLIBC_TUNABLES'), flush=True); "
    "hugepages.reexec_with_hugepage_malloc(); print('end', os.environ.get('GLIBC_TUNABLES'))"
)


def run_probe(**env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "VLA_JAX_NO_HUGEPAGES")}
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split("\n")[:-1]


def test_tunable_added_to_an_environment_keeping_other_tunables():
    assert with_hugepage_malloc({})["GLIBC_TUNABLES"] == TUNABLE
    merged = with_hugepage_malloc({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})["GLIBC_TUNABLES"]
    assert merged == f"glibc.malloc.arena_max=2:{TUNABLE}"
    assert (
        with_hugepage_malloc({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0"
    )


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_process_reexecs_once_with_the_tunable_and_respects_the_user():
    # Re-exec: the first image prints "start None" and is replaced; the second one starts with the tunable.
    assert run_probe() == ["start None", f"start {TUNABLE}", f"end {TUNABLE}"]
    user = "glibc.malloc.hugetlb=0"
    assert run_probe(GLIBC_TUNABLES=user) == [f"start {user}", f"end {user}"]
    assert run_probe(VLA_JAX_NO_HUGEPAGES="1") == ["start None", "end None"]


def test_benchmarks_record_the_malloc_tunables_with_the_machine():
    from bench.common import machine_info

    assert machine_info()["glibc_tunables"] == os.environ.get("GLIBC_TUNABLES")
