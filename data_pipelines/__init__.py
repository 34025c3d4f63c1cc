"""Everything between files on disk and a sharded batch (see docs/design.md, "The batch")."""

# The built-in OXE datasets and mixtures register themselves in `data_pipelines.registry` here, before any
# module of the package is used: every name lookup and every user registration (clash check) sees them,
# and the registry does not have to import its own entries (no registry <-> oxe_registry cycle).
from data_pipelines import oxe_registry  # noqa: F401
