"""One cluster job per study step, as text (nothing is submitted here).

Every job runs ``vla-jax study --config CONFIG --out OUT --step ID``: the same step, with the same
DONE marker and log, as a local run, so a resubmitted chain skips what finished. SLURM: one sbatch
file per step and ``submit.sh`` chaining them with ``--dependency=afterok`` on exactly each step's
dependencies (independent cells run in parallel), then a report job (``afterany``). TPU: ``tpu.sh``
asks for one single-host queued resource (default v4-8) through launch/tpu.py, installs the project,
runs the steps in order on worker 0 (study cells are one-host post-training runs; a multi-host
pre-training run belongs to ``launch/tpu.py run``), writes the report and deletes the resource. OUT must be a folder
every node / worker sees (launch/README.md).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from vla_jax.study.plan import PlannedStep

SLURM_HEADER = """\
#!/bin/bash
#SBATCH --job-name={job}
#SBATCH --output={log}
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=8
{gpus}#SBATCH --time={time}
set -euo pipefail
# Submitted from the repository root by submit.sh (the job starts there).
"""


def flat(step_id: str) -> str:
    return step_id.replace("/", "__")


def _study_cmd(config: str, out: str, *extra: str) -> str:
    return shlex.join([".venv/bin/vla-jax", "study", "--config", config, "--out", out, *extra])


def slurm(steps: Sequence[PlannedStep], config: str, out: str, name: str, jobs: Path) -> list[Path]:
    """jobs/NNN_ID.sbatch per step, jobs/report.sbatch and jobs/submit.sh (run it from the repository root)."""
    jobs.mkdir(parents=True, exist_ok=True)
    written, var = [], {}
    submit = [
        "#!/bin/bash",
        f"# {len(steps)} steps of study {name}; run from the repository root: bash {jobs}/submit.sh",
        "set -euo pipefail",
    ]
    for i, step in enumerate(steps):
        path = jobs / f"{i:03d}_{flat(step.id)}.sbatch"
        header = SLURM_HEADER.format(
            job=f"study-{name}-{flat(step.id)}"[:120],
            log=f"{out}/logs/{step.id}.slurm.out",
            gpus="#SBATCH --gpus-per-node=1\n" if step.command == "train" else "",
            time="24:00:00" if step.command == "train" else "04:00:00",
        )
        path.write_text(header + "srun " + _study_cmd(config, out, "--step", step.id) + "\n")
        written.append(path)
        var[step.id] = f"j{i}"
        dep = ":".join(f"${var[d]}" for d in step.deps)
        dependency = f" --dependency=afterok:{dep}" if dep else ""
        submit.append(f"j{i}=$(sbatch --parsable{dependency} {shlex.quote(str(path))})  # {step.id}")
    report = jobs / "report.sbatch"
    report.write_text(
        SLURM_HEADER.format(job=f"study-{name}-report", log=f"{out}/logs/report.slurm.out", gpus="", time="00:30:00")
        + shlex.join([".venv/bin/vla-jax", "study", "--report", out])
        + "\n"
    )
    written.append(report)
    every = ":".join(f"${v}" for v in var.values())
    submit.append(f"sbatch --dependency=afterany:{every} {shlex.quote(str(report))}  # tables from what finished")
    submit_path = jobs / "submit.sh"
    submit_path.write_text("\n".join(submit) + "\n")
    return [*written, submit_path]


def tpu(steps: Sequence[PlannedStep], config: str, out: str, name: str, jobs: Path) -> list[Path]:
    """jobs/tpu.sh: one queued resource (launch/tpu.py), then one `gcloud ... ssh` per step, in order."""
    jobs.mkdir(parents=True, exist_ok=True)
    lines = [
        "#!/bin/bash",
        f"# {len(steps)} steps of study {name} on one Cloud TPU queued resource; run from the repository root.",
        "# OUT must be a path every worker sees (gcsfuse bucket / Filestore NFS, see launch/README.md).",
        "set -euo pipefail",
        f"NAME=${{NAME:-vla-study-{name}}}".replace("_", "-"),
        "ZONE=${ZONE:?set ZONE, e.g. us-central2-b}",
        "ACCEL=${ACCEL:-v4-8}",
        "REPO=${REPO:?set REPO, the git URL of this project}",
        'python launch/tpu.py create --name "$NAME" --zone "$ZONE" --accelerator-type "$ACCEL"',
        'until gcloud compute tpus queued-resources describe "$NAME-qr" --zone="$ZONE" '
        "--format='value(state.state)' | grep -q ACTIVE; do sleep 60; done",
        'python launch/tpu.py install --name "$NAME" --zone "$ZONE" --repo "$REPO"',
    ]

    def ssh(worker: str, command: str) -> str:
        remote = f"cd ~/vla-jax && {command}"
        return (
            f'gcloud compute tpus tpu-vm ssh "$NAME" --zone="$ZONE" --worker={worker} --command={shlex.quote(remote)}'
        )

    for i, step in enumerate(steps, 1):
        lines.append(f"# {i}/{len(steps)} {step.id}")
        lines.append(ssh("0", _study_cmd(config, out, "--step", step.id)))
    lines.append(ssh("0", shlex.join([".venv/bin/vla-jax", "study", "--report", out])))
    lines.append('python launch/tpu.py delete --name "$NAME" --zone "$ZONE"')
    path = jobs / "tpu.sh"
    path.write_text("\n".join(lines) + "\n")
    return [path]


EMITTERS = {"slurm": slurm, "tpu": tpu}
