"""Runtime tests run on CPU with the project's venv; the HF model is only a test-time reference."""

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import torch  # noqa: E402

# Tiny models on a shared 2-core machine: one intra-op thread avoids spin contention (100x faster here).
torch.set_num_threads(1)
