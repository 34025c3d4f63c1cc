"""launch/tpu.py --dry-run prints the exact gcloud commands for a pod's life cycle."""

import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POD = ["--name", "vla-pod", "--zone", "us-central2-b", "--project", "my-proj", "--dry-run"]


def _dry(*args) -> list[list[str]]:
    out = subprocess.run(
        [sys.executable, "launch/tpu.py", *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return [shlex.split(line) for line in out.strip().splitlines()]


def test_create_queued_resource_v4_32():
    create, describe = _dry("create", *POD, "--accelerator-type", "v4-32", "--spot")
    assert create[:6] == ["gcloud", "compute", "tpus", "queued-resources", "create", "vla-pod-qr"]
    assert {
        "--node-id=vla-pod",
        "--zone=us-central2-b",
        "--project=my-proj",
        "--accelerator-type=v4-32",
        "--runtime-version=tpu-ubuntu2204-base",
        "--spot",
    } <= set(create)
    assert describe[4] == "describe"


def test_install_and_run_go_to_every_worker():
    (install,) = _dry("install", *POD, "--repo", "https://example.com/vla-jax.git", "--ref", "v1")
    assert install[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "vla-pod"] and "--worker=all" in install
    remote = install[-1].removeprefix("--command=")
    assert "git checkout --quiet v1" in remote and "jax[tpu]" in remote and "pip install" in remote
    (run,) = _dry(
        "run",
        *POD,
        "--config",
        "configs/pretrain_oxe_kosmos2.py",
        "--workdir",
        "/mnt/runs/a",
        "--",
        "--config.num_steps=10",
        "--config.mesh.fsdp=8",
    )
    assert "--worker=all" in run
    remote = run[-1].removeprefix("--command=")
    assert (
        "vla-jax train --config configs/pretrain_oxe_kosmos2.py --workdir /mnt/runs/a "
        "--config.num_steps=10 --config.mesh.fsdp=8"
    ) in remote and "nohup" in remote


def test_tail_stop_delete():
    (tail,) = _dry("tail", *POD)
    assert "--worker=0" in tail and tail[-1].startswith("--command=tail")
    (stop,) = _dry("stop", *POD)
    assert "--worker=all" in stop and "kill -TERM" in stop[-1]
    (delete,) = _dry("delete", *POD)
    assert delete[:6] == ["gcloud", "compute", "tpus", "queued-resources", "delete", "vla-pod-qr"]
    assert "--quiet" in delete and "--force" in delete
