"""vla_runtime: torch-only runtime for policies exported by vla-jax.

Depends on torch, numpy, safetensors and tokenizers only (msgpack and websockets
for the optional server); never imports jax, flax, tensorflow or transformers.
"""

from .errors import InputError, NonFiniteActionError, RuntimeConfigError
from .policy import Policy

__all__ = ["Policy", "InputError", "NonFiniteActionError", "RuntimeConfigError"]
__version__ = "0.1.0"
