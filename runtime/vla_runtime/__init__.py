"""vla_runtime: torch-only runtime for policies exported by vla-jax.

Depends on torch, numpy, safetensors and tokenizers only (msgpack and websockets
for the optional server); never imports jax, flax, tensorflow or transformers.
`vla_runtime.policy_io` (the policy I/O definitions training shares) imports
numpy only, so `Policy` (torch) is loaded on first use.
"""

from typing import TYPE_CHECKING

from .errors import InputError, NonFiniteActionError, RuntimeConfigError

if TYPE_CHECKING:
    from .policy import Policy

__all__ = ["Policy", "InputError", "NonFiniteActionError", "RuntimeConfigError"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "Policy":
        from .policy import Policy

        return Policy
    raise AttributeError(f"module 'vla_runtime' has no attribute {name!r}")
