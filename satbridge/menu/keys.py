"""Key bindings -> named actions. The help screen is generated from this table."""

from __future__ import annotations

GLOBAL = {
    "f1": "help",
    "?": "help",
    "esc": "back",
    "q": "back",
    "f10": "quit",
}
LOG_VIEWER = {
    "/": "search",
    "n": "search-next",
    "G": "end",
    "g": "start",
    "f": "follow",
}
DESCRIPTIONS = {
    "help": "show the key bindings",
    "back": "back to the menu (q or Esc)",
    "quit": "leave the console",
    "search": "log viewer: search for a text",
    "search-next": "log viewer: next match",
    "end": "log viewer: jump to the end",
    "start": "log viewer: jump to the start",
    "follow": "log viewer: follow new lines (toggle)",
}


def help_lines() -> list[str]:
    rows = [f"  {k:<6} {DESCRIPTIONS[a]}" for table in (GLOBAL, LOG_VIEWER) for k, a in table.items()]
    return ["Keys:", *rows, "", "Arrows and Enter move and choose; Tab moves between fields."]
