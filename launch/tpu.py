#!/usr/bin/env python3
"""Cloud TPU VM / pod life cycle for `vla-jax train`: create, install, run, tail, delete.

Every step is one or more `gcloud` commands; ``--dry-run`` prints them exactly
(one per line, shell-quoted) instead of running them, so they can be reviewed
or pasted. Only the Python standard library is used: this runs on a laptop
with nothing but gcloud installed.

    python launch/tpu.py create  --name vla-pod --zone us-central2-b --accelerator-type v4-32 --spot
    python launch/tpu.py install --name vla-pod --zone us-central2-b --repo https://github.com/ORG/vla-jax.git
    python launch/tpu.py run     --name vla-pod --zone us-central2-b --config configs/pretrain_oxe_kosmos2.py \\
                                 --workdir /mnt/runs/oxe1 -- --config.num_steps=300000
    python launch/tpu.py tail    --name vla-pod --zone us-central2-b
    python launch/tpu.py delete  --name vla-pod --zone us-central2-b

`run` starts the same command on every worker (``--worker=all``); each host
finds its peers through the TPU runtime (see vla_jax/train/distributed.py),
feeds its share of the batch, and the workdir must be a path every worker
sees (a gcsfuse-mounted bucket or Filestore NFS; see launch/README.md).
Re-running `run` after a pre-emption resumes from the workdir's checkpoint.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

LOG = "~/vla-jax-train.log"
SRC = "~/vla-jax"
PID = "~/vla-jax-train.pid"


def _common(args) -> list[str]:
    out = [f"--zone={args.zone}"]
    if args.project:
        out.append(f"--project={args.project}")
    return out


def _ssh(args, command: str, worker: str = "all") -> list[str]:
    return [
        "gcloud",
        "compute",
        "tpus",
        "tpu-vm",
        "ssh",
        args.name,
        *_common(args),
        f"--worker={worker}",
        f"--command={command}",
    ]


def cmd_create(args) -> list[list[str]]:
    cmd = [
        "gcloud",
        "compute",
        "tpus",
        "queued-resources",
        "create",
        f"{args.name}-qr",
        f"--node-id={args.name}",
        *_common(args),
        f"--accelerator-type={args.accelerator_type}",
        f"--runtime-version={args.runtime_version}",
    ]
    if args.spot:
        cmd.append("--spot")
    if args.reserved:
        cmd.append("--reserved")
    return [cmd, ["gcloud", "compute", "tpus", "queued-resources", "describe", f"{args.name}-qr", *_common(args)]]


def cmd_install(args) -> list[list[str]]:
    steps = [
        f"(test -d {SRC} || git clone {shlex.quote(args.repo)} {SRC})",
        f"cd {SRC} && git fetch --all --quiet && git checkout --quiet {shlex.quote(args.ref)}",
        "python3 -m venv .venv",
        ".venv/bin/pip install --quiet --upgrade pip",
        # libtpu comes with jax[tpu]; the project itself pins everything else.
        ".venv/bin/pip install --quiet -e . 'jax[tpu]' -f https://storage.googleapis.com/jax-releases/libtpu_releases.html",
        ".venv/bin/python -c 'import jax; print(jax.process_index(), jax.local_device_count(), jax.device_count())'",
    ]
    return [_ssh(args, " && ".join(steps))]


def cmd_run(args) -> list[list[str]]:
    train = ["vla-jax", "train", "--config", args.config, "--workdir", args.workdir, *args.overrides]
    remote = (
        f"cd {SRC} && source .venv/bin/activate && nohup {shlex.join(train)} > {LOG} 2>&1 < /dev/null & echo $! > {PID}"
    )
    return [_ssh(args, remote)]


def cmd_tail(args) -> list[list[str]]:
    return [_ssh(args, f"tail -n {args.lines} -f {LOG}", worker=str(args.worker))]


def cmd_stop(args) -> list[list[str]]:
    # SIGTERM = pre-emption path: every host saves the checkpoint collectively, then exits.
    return [_ssh(args, f"kill -TERM $(cat {PID})")]


def cmd_delete(args) -> list[list[str]]:
    return [
        [
            "gcloud",
            "compute",
            "tpus",
            "queued-resources",
            "delete",
            f"{args.name}-qr",
            *_common(args),
            "--force",
            "--quiet",
        ]
    ]


COMMANDS = {
    "create": cmd_create,
    "install": cmd_install,
    "run": cmd_run,
    "tail": cmd_tail,
    "stop": cmd_stop,
    "delete": cmd_delete,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    for name in COMMANDS:
        p = sub.add_parser(name, help=f"{name} (see module docstring)")
        p.add_argument("--name", required=True, help="TPU node name (the queued resource is NAME-qr)")
        p.add_argument("--zone", required=True, help="e.g. us-central2-b (v4), us-west4-a (v5e)")
        p.add_argument("--project", default="", help="GCP project (default: gcloud's configured one)")
        p.add_argument("--dry-run", action="store_true", help="print the gcloud commands, run nothing")
        if name == "create":
            p.add_argument("--accelerator-type", default="v4-32", help="v4-8, v4-32, v5litepod-16, ...")
            p.add_argument("--runtime-version", default="tpu-ubuntu2204-base")
            p.add_argument("--spot", action="store_true", help="pre-emptible capacity (training resumes)")
            p.add_argument("--reserved", action="store_true", help="use the project's reservation")
        if name == "install":
            p.add_argument("--repo", required=True, help="git URL of this project")
            p.add_argument("--ref", default="main", help="branch, tag or commit to install")
        if name == "run":
            p.add_argument("--config", required=True)
            p.add_argument("--workdir", required=True, help="a path every worker sees (gcsfuse / NFS)")
            p.add_argument("overrides", nargs="*", help="after `--`: --config.KEY=VALUE ...")
        if name == "tail":
            p.add_argument("--worker", default=0, type=int, help="which host's log (process 0 has the progress bar)")
            p.add_argument("--lines", default=100, type=int)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = COMMANDS[args.action](args)
    for cmd in commands:
        if args.dry_run:
            print(shlex.join(cmd))
            continue
        code = subprocess.call(cmd)
        if code:
            print(f"launch/tpu.py: `{shlex.join(cmd)}` failed with exit code {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
