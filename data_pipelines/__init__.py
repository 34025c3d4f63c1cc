"""Everything between files on disk and a sharded batch (see DESIGN.md, "The batch")."""
