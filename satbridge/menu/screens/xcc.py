"""XCC service: its state, and Start/Stop/Restart only when XCC is installed."""

from __future__ import annotations

import asyncio

import urwid

from satbridge.errors import SatbridgeError
from satbridge.menu import views
from satbridge.menu.base import Controller
from satbridge.menu.screens.common import xcc_line
from satbridge.menu.term import plain

READ_DEADLINE = 3.0


class XccView:
    def __init__(self, control: views.Action) -> None:
        self.text = urwid.Text("reading XCC...")
        self.buttons = urwid.Pile([])
        self.widget = views.body([self.text, urwid.Divider(), self.buttons])

    def show(self, line: str, verbs: list[tuple[str, views.Action]]) -> None:
        self.text.set_text(plain(line))
        self.buttons.contents[:] = [(views.button(label, act), ("pack", None)) for label, act in verbs]


class XccController(Controller):
    name = "xcc"
    title = "XCC service"

    def make_ui(self) -> urwid.Widget:
        self.view = XccView(lambda: None)
        self.shown = ""
        return self.view.widget

    def start(self) -> None:
        self.app.spawn(self.refresh())

    async def refresh(self) -> None:
        if not self.bridge.xcc.installed():
            self._show("XCC: not installed. The central server installs it when it commissions the satellite.", [])
            return
        try:
            status = await asyncio.wait_for(self.bridge.xcc.status(), READ_DEADLINE)
        except TimeoutError:
            self._show(f"XCC: state unavailable (systemd gave no answer within {READ_DEADLINE:g} s).", [])
            return
        except SatbridgeError as exc:
            self._show(f"XCC: state unavailable ({exc}).", [])
            return
        verbs = [(v.capitalize(), self._control(v)) for v in ("start", "stop", "restart")]
        self._show(f"XCC: {xcc_line(status)}", verbs)

    def _show(self, line: str, verbs: list[tuple[str, views.Action]]) -> None:
        key = line + "|" + ",".join(label for label, _ in verbs)
        if key != self.shown:
            self.shown = key
            self.view.show(line, verbs)

    def _control(self, verb: str) -> views.Action:
        async def run() -> None:
            self.app.say(f"{verb.capitalize()} XCC...")
            self.app.draw()
            await self.bridge.xcc.control(verb)
            self.app.say(f"XCC {verb}: done")
            await self.refresh()

        return lambda: self.act(run)
