"""Logs: the list of log sources; Enter opens one in the viewer."""

from __future__ import annotations

import urwid

from satbridge.menu import views
from satbridge.menu.base import Controller
from satbridge.menu.term import plain


class LogsController(Controller):
    name = "logs"
    title = "logs"

    def make_ui(self) -> urwid.Widget:
        sources = self.bridge.logs.list()
        items = [
            (plain(f"{s.name}  ({s.size} bytes)" if s.kind == "file" else s.name), self._open(s.name)) for s in sources
        ]
        self.list = views.body([views.button(label, act) for label, act in items])
        return self.list

    def _open(self, name: str) -> views.Action:
        def go() -> None:
            self.app.viewing = name  # type: ignore[attr-defined]
            self.app.open("log-viewer")

        return go
