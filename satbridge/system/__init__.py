"""Adapters: the only code that touches the operating system and foreign libraries."""
