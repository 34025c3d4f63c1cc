"""A fresh venv with only torch==2.13.0 and runtime/ (pip resolves transformers, numpy, safetensors,
tokenizers from runtime/pyproject.toml) loads an export of every backbone family and steps it.

Slow (measured 93 s on the shared 2-core machine at load 7: torch from the local wheel, transformers and its
dependencies from the pip cache / PyPI).
"""

import os
import shutil
import subprocess
import sys

import pytest

from runtime_helpers import write_tiny_export

RUNTIME_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHECK = """
import importlib.util, sys
import numpy as np, torch
import vla_runtime
assert torch.__version__.startswith("2.13.0"), torch.__version__
for heavy in ("jax", "flax", "tensorflow"):
    assert importlib.util.find_spec(heavy) is None, heavy + " leaked into the robot venv"
for export in sys.argv[1:]:
    policy = vla_runtime.Policy.load(export, device="cpu")
    policy.reset("go left")
    for i in range(3):
        chunk = policy.step(np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    assert chunk.shape == (2, 3) and np.isfinite(chunk).all()
import transformers
print("FRESH-VENV-OK", vla_runtime.__file__, transformers.__version__)
"""


@pytest.mark.slow
def test_fresh_venv_with_only_runtime_and_torch(tmp_path):
    exports = [write_tiny_export(str(tmp_path / f"export-{family}"), structure=structure, head=head, model_type=family)
               for family, structure, head in (("kosmos-2", "policy_head", "gpt"), ("paligemma", "interleaved", "mlp"),
                                               ("smolvlm", "one_step_discrete", "discrete"))]
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
        RUNTIME_DIR, tmp_path / "runtime-src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests")
    )
    run(pip + [str(source)], 600)  # with its dependencies: the pyproject's transformers range is what gets tested
    out = run([py, "-c", CHECK, *exports], 300)
    assert "FRESH-VENV-OK" in out and str(venv) in out  # the installed copy, not the source tree
