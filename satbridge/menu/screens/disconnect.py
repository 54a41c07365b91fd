"""Disconnect: names the server and what changes, starts on No; says so when not paired."""

from __future__ import annotations

import urwid

from satbridge.menu import views
from satbridge.menu.base import Controller
from satbridge.menu.screens.common import when


class DisconnectController(Controller):
    name = "disconnect"
    title = "disconnect"

    def make_ui(self) -> urwid.Widget:
        self.text = urwid.Text("")
        self.walker = urwid.SimpleFocusListWalker([self.text])
        self.page = views.Body(self.walker)
        return self.page

    def start(self) -> None:
        p = self.bridge.pairing.status()
        if not p.paired:
            self.text.set_text("This satellite is not paired with a server: there is nothing to disconnect.")
            self.walker[:] = [self.text, urwid.Divider(), views.button("Back", self.app.back)]
            return
        xcc = self.bridge.xcc
        what = f"XCC {xcc.version() or ''} stops (it stays installed)." if xcc.installed() else "XCC is not installed."
        self.text.set_text(f"Paired with {p.peer_name} since {when(p.paired_at)}.")
        self.app.ask(
            "disconnect?",
            [
                f"Disconnect from {p.peer_name}?",
                f"  fingerprint {p.peer_fingerprint[:32]}",
                f"Its access ends at once. {what}",
                "Pairing again needs a new pairing window.",
            ],
            [("No", self.app.back), (f"Yes, disconnect {p.peer_name}", self.run)],
            focus=0,
        )

    def run(self) -> None:
        async def go() -> None:
            done = await self.bridge.disconnect.disconnect(by="console")
            self.text.set_text(
                ("Disconnected." if done.was_paired else "It was no longer paired: nothing to disconnect.")
                + (" XCC stopped." if done.xcc_stopped else "")
                + (f" {done.problem}" if done.problem else "")
            )
            self.walker[:] = [self.text, urwid.Divider(), views.button("Back", self.app.back)]

        self.act(go)
