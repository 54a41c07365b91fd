"""satctl: the reference management client (library + CLI)."""
