"""Key bindings -> named actions (mitmproxy's way): the help screen is generated from these
tables, and every action runs by name without a keystroke.

Letters are global only where no field has the focus: a field takes every printable key, so
Esc (never typed into a field) is the one "back" that works everywhere.
"""

from __future__ import annotations

GLOBAL = {
    "f1": "help",
    "?": "help",
    "esc": "back",
    "q": "back",
    "f10": "quit",
}
MAIN_MENU = {
    "1": "status",
    "2": "commission",
    "3": "network",
    "4": "xcc",
    "5": "firewall",
    "6": "logs",
    "7": "disconnect",
    "8": "factory-reset",
    "9": "about",
}
LOG_VIEWER = {
    "/": "search",
    "n": "search-next",
    "N": "search-previous",
    "G": "end",
    "g": "start",
    "f": "follow",
}
DESCRIPTIONS = {
    "help": "show the key bindings",
    "back": "back to the screen before (Esc anywhere; q where no field has the focus)",
    "quit": "leave the console",
    "search": "log viewer: search (case-insensitive unless the text has capitals)",
    "search-next": "log viewer: next match (wraps)",
    "search-previous": "log viewer: previous match (wraps)",
    "end": "log viewer: jump to the end",
    "start": "log viewer: jump to the start",
    "follow": "log viewer: follow new lines (toggle; PgUp stops the scrolling)",
}


def help_lines() -> list[str]:
    rows = [f"  {k:<6} {DESCRIPTIONS[a]}" for table in (GLOBAL, LOG_VIEWER) for k, a in table.items()]
    return [
        "Keys:",
        *rows,
        "  1-9    main menu: open the numbered item",
        "",
        "Arrows move; Enter chooses. Tab/Shift-Tab move between fields and buttons;",
        "Enter in a field goes to the next; Ctrl-U clears a field. Questions that",
        "change or remove something start on No; Esc answers No.",
    ]
