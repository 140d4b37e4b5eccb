"""Per-batch operator implementations, one module per family."""
