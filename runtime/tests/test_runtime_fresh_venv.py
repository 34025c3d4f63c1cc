"""A fresh venv with only torch==2.13.0 and runtime/ (pip resolves transformers, numpy, safetensors,
tokenizers from runtime/pyproject.toml) loads an export of every backbone family and steps it to the
actions the development venv computes (1e-5); then the same with the oldest transformers the
pyproject allows (5.20.2, the newest for Python 3.10 / JetPack 6).

Slow (measured 123 s on the shared 2-core machine at load 7: torch from the local wheel, transformers and its
dependencies from the pip cache / PyPI).
"""

import json
import os
import shutil
import subprocess
import sys

from runtime_helpers import write_tiny_export

RUNTIME_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The lowest transformers the runtime's pyproject allows: the newest release for Python 3.10 (JetPack 6).
OLDEST_TRANSFORMERS = "5.20.2"

CHECK = """
import importlib.util, json, sys
import numpy as np, torch
import transformers, vla_runtime
assert torch.__version__.startswith("2.13.0"), torch.__version__
for heavy in ("jax", "flax", "tensorflow"):
    assert importlib.util.find_spec(heavy) is None, heavy + " leaked into the robot venv"
expected = json.load(open(sys.argv[1]))
for export, chunks in expected.items():
    policy = vla_runtime.Policy.load(export, device="cpu")
    policy.reset("go left")
    for i, want in enumerate(chunks):
        chunk = policy.step(np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8))
        diff = float(np.abs(chunk - np.asarray(want)).max())
        assert diff <= 1e-5, (export, i, diff)
print("FRESH-VENV-OK", vla_runtime.__file__, transformers.__version__)
"""


def _reference_chunks(exports) -> dict:
    """What the development venv's runtime (its transformers) returns for the frames CHECK feeds."""
    import numpy as np

    from vla_runtime import Policy

    out = {}
    for export in exports:
        policy = Policy.load(export)
        policy.reset("go left")
        out[export] = [
            policy.step(np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8)).tolist()
            for i in range(3)
        ]
    return out


def test_fresh_venv_with_only_runtime_and_torch(tmp_path):
    exports = [
        write_tiny_export(str(tmp_path / f"export-{family}"), structure=structure, head=head, model_type=family)
        for family, structure, head in (
            ("kosmos-2", "policy_head", "gpt"),
            ("paligemma", "interleaved", "mlp"),
            ("smolvlm", "one_step_discrete", "discrete"),
            ("idefics", "interleaved", "mlp"),  # cross-attention media through the window's KV cache
            ("llava", "policy_head", "lstm"),
            ("qwen2_5_vl", "interleaved", "mlp"),  # 3-D positions continued across the KV cache
        )
    ]
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps(_reference_chunks(exports)))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    # --no-compile: byte-compiling torch's ~10k files is most of the install time and not what is tested.
    pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile"]

    def run(cmd, timeout):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(tmp_path))
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    run(pip + ["torch==2.13.0"], 600)
    # Build from a copy: setuptools builds in the source tree and would leave runtime/build behind.
    source = shutil.copytree(
        RUNTIME_DIR,
        tmp_path / "runtime-src",
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"),
    )
    run(pip + [str(source)], 600)  # with its dependencies: the pyproject's transformers range is what gets tested
    out = run([py, "-c", CHECK, str(reference)], 300)
    assert "FRESH-VENV-OK" in out and str(venv) in out  # the installed copy, not the source tree
    # The same actions with the oldest transformers the pyproject allows (only that wheel changes).
    run(pip + [f"transformers=={OLDEST_TRANSFORMERS}"], 300)
    out = run([py, "-c", CHECK, str(reference)], 300)
    assert "FRESH-VENV-OK" in out and str(venv) in out and out.strip().endswith(OLDEST_TRANSFORMERS), out
