"""Commission / connect: the pairing window every console shares (one code, read from the
window file each second), a warning before a paired satellite opens one, and a question before
leaving it open."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import urwid

from satbridge.core.addresses import reachable_addresses
from satbridge.menu import views
from satbridge.menu.base import Controller
from satbridge.menu.screens.common import countdown, when
from satbridge.menu.term import plain

if TYPE_CHECKING:
    from satbridge.core.status import PairingStatus
    from satbridge.services.pairing import OpenWindow


class CommissionView:
    def __init__(self, new_code: views.Action, close: views.Action) -> None:
        self.text = urwid.Text("reading the pairing window...")
        self.actions = urwid.Pile([])
        self._buttons = [views.button("New code", new_code), views.button("Close the window", close)]
        self.widget = views.body([self.text, urwid.Divider(), self.actions])

    def window(self, w: OpenWindow, addresses: list[str], ports: str, left: float) -> None:
        self.text.set_text(
            "\n".join(
                [
                    "On the central server, pair with this satellite using:",
                    "",
                    f"  Code:         {w.code}",
                    f"  Fingerprint:  {w.fingerprint[:32]}",
                    f"                {w.fingerprint[32:]}",
                    f"  Addresses:    {plain(', '.join(addresses)) or '-'}",
                    f"  Ports:        {ports}",
                    "",
                    f"Waiting for the server... {countdown(left)} left, {w.attempts_left} attempts.",
                ]
            )
        )
        self._buttons_shown(show=True)

    def paired(self, p: PairingStatus) -> None:
        self.text.set_text(
            plain(f"PAIRED with {p.peer_name} at {when(p.paired_at)}.\n\nThe server can now manage this satellite.")
        )
        self._buttons_shown(show=False)

    def closed(self) -> None:
        self.text.set_text(
            "The pairing window is closed (expired, closed, or too many wrong codes).\n"
            "Choose New code to open it again."
        )
        self._buttons_shown(show=True, close=False)

    def _buttons_shown(self, *, show: bool, close: bool = True) -> None:
        wanted = (self._buttons if close else self._buttons[:1]) if show else []
        if [w for w, _ in self.actions.contents] != wanted:
            self.actions.contents[:] = [(b, ("pack", None)) for b in wanted]


class CommissionController(Controller):
    name = "commission"
    title = "commission / connect"

    def make_ui(self) -> urwid.Widget:
        self.view = CommissionView(self.new_code, self.close)
        self.opened_at = 0.0
        self.live = False
        return self.view.widget

    @property
    def pairing(self):  # type: ignore[no-untyped-def]
        return self.bridge.pairing

    def start(self) -> None:
        p = self.pairing.status()
        if p.paired:
            self.app.ask(
                "already paired",
                [
                    f"This satellite is paired with {p.peer_name} (since {when(p.paired_at)}).",
                    "",
                    "A pairing window lets a server pair, and that pairing REPLACES",
                    f"{p.peer_name}: its access ends at once.",
                ],
                [("No, go back", self.app.back), ("Open a window", self._open_confirmed)],
                focus=0,
            )
            return
        self._show_or_open()

    def _open_confirmed(self) -> None:
        self.app.close_modal()
        self._show_or_open(force=True)

    def _show_or_open(self, *, force: bool = False) -> None:
        async def run() -> None:
            shown = None if force else await asyncio.to_thread(self.pairing.current_window)
            if shown is None:
                await asyncio.to_thread(self.pairing.open_window)
            self.opened_at = self.pairing.clock()
            self.live = True
            await self.refresh()

        self.act(run)

    def new_code(self) -> None:
        async def run() -> None:
            await asyncio.to_thread(self.pairing.open_window)
            self.opened_at = self.pairing.clock()
            self.live = True
            self.app.say("A new code: the one shown before no longer works.")
            await self.refresh()

        self.act(run)

    def close(self) -> None:
        async def run() -> None:
            closed = await asyncio.to_thread(self.pairing.close_window)
            self.app.say("Pairing window closed." if closed else "The pairing window was already closed.")
            await self.refresh()

        self.act(run)

    async def refresh(self) -> None:
        if not self.live:
            return
        p = self.pairing.status()
        if p.paired and self.opened_at <= (p.paired_at or 0):
            self.view.paired(p)
            return
        shown = await asyncio.to_thread(self.pairing.current_window)
        if shown is None:
            self.view.closed()
            if (c := p.closed_for_failures) is not None:  # issue 16: say who closed it, and when
                self.view.text.set_text(
                    plain(
                        f"The pairing window was closed at {when(c.closed_at)} by wrong codes from "
                        f"{c.summary(when)}.\nChoose New code to open it again."
                    )
                )
            return
        server = self.bridge.config.server
        addresses = reachable_addresses([server.pairing_listen, server.listen], self.bridge.status.host.addresses())
        ports = f"pairing {server.pairing_listen.port}, management {server.listen.port}"
        self.view.window(shown, addresses, ports, shown.expires_at - self.pairing.clock())

    def leave(self, go: views.Action) -> None:
        shown = self.pairing.current_window() if self.live else None
        if shown is None:
            go()
            return

        def close_and_go() -> None:
            self.pairing.close_window()
            self.app.close_modal()
            go()
            self.app.say("Pairing window closed.")

        def keep_and_go() -> None:
            self.app.close_modal()
            go()
            self.app.say(f"The pairing window stays open ({countdown(shown.expires_at - self.pairing.clock())} left).")

        self.app.ask(
            "pairing window open",
            [
                f"The pairing window is still open: code {shown.code},",
                f"{countdown(shown.expires_at - self.pairing.clock())} left. Any server that has the code can pair.",
                "Close it?",
            ],
            [("Close the window", close_and_go), ("Leave it open", keep_and_go)],
            focus=0,
        )
