"""vla_runtime never imports jax, flax, tensorflow, optax or orbax: run it with those imports blocked.

transformers is the runtime's backbone library now (its own torch classes), so it is allowed; the
test also checks that transformers' lazy imports do not drag a blocked framework in.
"""

import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = textwrap.dedent("""
    import importlib.abc, importlib.machinery, sys
    BLOCKED = ("jax", "jaxlib", "flax", "tensorflow", "optax", "orbax")

    class Refuse(importlib.abc.Loader):
        def create_module(self, spec):
            raise ImportError(f"vla_runtime must not import {spec.name}")

        def exec_module(self, module):
            raise ImportError(f"vla_runtime must not import {module.__name__}")

    class Blocker(importlib.abc.MetaPathFinder):
        # A spec without origin: probes such as torch's find_spec() see "no files" (as on a robot
        # without these packages); an actual import fails.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                return importlib.machinery.ModuleSpec(name, Refuse(), origin=None)
            return None

    sys.meta_path.insert(0, Blocker())
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]

    import numpy as np, torch
    torch.set_num_threads(1)
    import vla_runtime, vla_runtime.server, vla_runtime.client, vla_runtime.cli, vla_runtime.sizes
    from runtime_helpers import write_tiny_export
    for family in ("kosmos-2", "paligemma", "smolvlm"):
        export = write_tiny_export(sys.argv[1] + family, structure="interleaved", head="mlp", model_type=family)
        policy = vla_runtime.Policy.load(export)
        policy.reset("go left")
        chunk = policy.step(np.zeros((50, 70, 3), np.uint8))
        assert chunk.shape == (2, 3) and np.isfinite(chunk).all()
    assert "transformers" in sys.modules  # the backbones really ran on transformers' classes
    loaded = sorted({m.split(".")[0] for m in sys.modules} & set(BLOCKED))
    assert not loaded, loaded
    print("ISOLATED-OK")
""")


def test_runtime_runs_with_heavy_frameworks_blocked(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE])}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "export")], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ISOLATED-OK" in proc.stdout
