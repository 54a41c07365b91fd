"""The main menu: numbered items; it is kept while the app runs, so it remembers its focus."""

from __future__ import annotations

import urwid

from satbridge.menu import keys, views
from satbridge.menu.base import Controller

ITEMS = [
    ("1", "Status", "status"),
    ("2", "Commission / connect", "commission"),
    ("3", "Network", "network"),
    ("4", "XCC service", "xcc"),
    ("5", "Firewall", "firewall"),
    ("6", "Logs", "logs"),
    ("7", "Disconnect from server", "disconnect"),
    ("8", "Factory reset", "factory-reset"),
    ("9", "About", "about"),
    ("", "Help (F1)", "help"),
    ("", "Quit (F10)", "quit"),
]


class MainMenuView(urwid.WidgetWrap):
    def __init__(self, controller: MainMenuController) -> None:
        self.controller = controller
        self.list = views.menu([(k, label, self._go(name)) for k, label, name in ITEMS])
        super().__init__(self.list)

    def _go(self, name: str) -> views.Action:
        return lambda: self.controller.choose(name)

    def keypress(self, size: tuple[int, int], key: str) -> str | None:
        if key in keys.MAIN_MENU:
            name = keys.MAIN_MENU[key]
            self.list.set_focus(next(i for i, item in enumerate(ITEMS) if item[2] == name))
            self.controller.choose(name)
            return None
        return super().keypress(size, key)


class MainMenuController(Controller):
    name = "menu"
    title = "menu"
    footer = "1-9 or Enter choose   F1 help   F10 quit"

    def make_ui(self) -> urwid.Widget:
        if not hasattr(self, "view"):
            self.view = MainMenuView(self)
        return self.view

    def choose(self, name: str) -> None:
        self.app.open(name)
