"""Status: the overview, drawn part by part as each answers, refreshed every second."""

from __future__ import annotations

from typing import TYPE_CHECKING

import urwid

from satbridge.menu.base import Controller
from satbridge.menu.screens.common import network_line, when, xcc_line
from satbridge.menu.term import plain

if TYPE_CHECKING:
    from satbridge.core.status import Status


class StatusView:
    def __init__(self) -> None:
        self.text = urwid.Text("reading the status...")
        self.widget = urwid.Filler(self.text, valign="top")

    def show(self, s: Status) -> None:
        p = s.pairing
        lines = [
            f"Hostname:        {s.hostname}",
            f"Addresses:       {', '.join(a.address for a in s.addresses if a.interface != 'lo') or '-'}",
            f"Paired:          {('yes, with ' + p.peer_name) if p.paired else 'no'}",
            f"Pairing window:  {'open until ' + when(p.window_expires_at) if p.window_open else 'closed'}",
            f"XCC:             {xcc_line(s.xcc)}",
            f"Firewall:        revision {s.firewall_revision}",
            f"Network:         {network_line(s.network)}",
            f"Bridge version:  {s.bridge_version}",
            f"Generation:      {s.state_generation} (instance {s.instance_id[:12]})",
            "",
            *(f"WARNING: {w}" for w in s.warnings),
        ]
        self.text.set_text(plain("\n".join(lines)))


class StatusController(Controller):
    name = "status"
    title = "status"

    def make_ui(self) -> urwid.Widget:
        self.view = StatusView()
        return self.view.widget

    def start(self) -> None:
        async def first() -> None:
            # Each part appears as soon as it answers; a slow daemon delays only its own line.
            async for s in self.bridge.status.updates():
                self.view.show(s)
                self.app.draw()

        self.app.spawn(first())

    async def refresh(self) -> None:
        # The last complete status stays on screen while the next one is read.
        self.view.show(await self.bridge.status.get())
