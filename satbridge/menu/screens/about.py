"""About and Help: text pages."""

from __future__ import annotations

import urwid

from satbridge import __version__
from satbridge.menu import keys, views
from satbridge.menu.base import Controller


class AboutController(Controller):
    name = "about"
    title = "about"

    def make_ui(self) -> urwid.Widget:
        b = self.bridge
        return views.text_page(
            [
                f"Satellite Bridge {__version__}",
                f"XCC: {b.xcc.version() or 'not installed'}",
                f"Identity: {b.identity.current().fingerprint.hex()[:32]}",
            ]
        )


class HelpController(Controller):
    name = "help"
    title = "help"

    def make_ui(self) -> urwid.Widget:
        return views.text_page(keys.help_lines())
