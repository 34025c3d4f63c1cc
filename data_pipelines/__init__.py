"""Everything between files on disk and a sharded batch (see docs/design.md, "The batch")."""
