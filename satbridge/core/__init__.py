"""Pure logic: no I/O, no foreign libraries."""
