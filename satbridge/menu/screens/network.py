"""Network: the setting in force, a form prefilled from it (address, gateway, DNS, search
domains; the hostname apart), and the keep/revert question as a modal with a countdown. The
pending change is a file every console and the CLI read, so any of them can keep it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import urwid

from satbridge.errors import SatbridgeError
from satbridge.menu import views
from satbridge.menu.base import Controller
from satbridge.menu.term import plain

if TYPE_CHECKING:
    from satbridge.core.network import NetworkState

KEEP = "keep this setting?"
LEAVE = "a change awaits confirmation"
FIELDS = [
    ("address", "Address/prefix", ""),
    ("gateway", "Gateway", ""),
    ("dns", "DNS servers", ""),
    ("search", "Search domains", ""),
]


class NetworkView:
    def __init__(self, apply: views.Action, dhcp: views.Action, hostname: views.Action) -> None:
        self.info = urwid.Text("reading the network...")
        self.form = views.Form(FIELDS)
        self.host = views.Form([("hostname", "Hostname", "")])
        self.apply_button = views.button("Apply static address", apply)
        self.widget = views.body(
            [
                self.info,
                urwid.Divider(),
                urwid.Text("Static IPv4 address (IPv6 configures itself):"),
                *self.form.rows,
                self.apply_button,
                views.button("Use DHCP", dhcp),
                urwid.Divider(),
                *self.host.rows,
                views.button("Set hostname", hostname),
            ]
        )

    def state(self, s: NetworkState, *, fill: bool) -> None:
        how = {"auto": "DHCP", "manual": "static"}.get(s.method, s.method or "-")
        self.info.set_text(
            plain(
                f"{s.interface}: {how}, {', '.join(s.addresses) or 'no address'}; gateway {s.gateway or '-'}\n"
                f"DNS {', '.join(s.dns) or '-'}; search {' '.join(s.search) or '-'}; hostname {s.hostname or '-'}"
            )
        )
        if fill:
            if s.method == "manual":
                self.form.fill(
                    {
                        "address": s.addresses[0] if s.addresses else "",
                        "gateway": s.gateway,
                        "dns": " ".join(s.dns),
                        "search": " ".join(s.search),
                    }
                )
            self.host.fill({"hostname": s.hostname})


class NetworkController(Controller):
    name = "network"
    title = "network"
    footer = "Tab next field   Enter apply/next   Ctrl-U clear   Esc back   F1 help"

    def make_ui(self) -> urwid.Widget:
        self.view = NetworkView(self.apply_static, self.dhcp, self.set_hostname)
        self.filled = False
        self.asking = False
        self.later = ""  # the checkpoint of the change the admin chose to decide later
        return self.view.widget

    @property
    def form(self) -> views.Form:
        return self.view.form

    def start(self) -> None:
        self.app.spawn(self.refresh())

    async def refresh(self) -> None:
        s = await self.bridge.network.show()
        self.view.state(s, fill=not self.filled)
        self.filled = True
        pending = self.bridge.network.pending()
        if pending is not None:
            if pending.checkpoint != self.later:  # "Decide later" holds for this change only
                self._ask_keep(pending.what, pending.deadline - self.bridge.pairing.clock())
        else:
            self.later = ""
            if self.asking:
                self.asking = False
                self.app.close_modal(KEEP)

    def _ask_keep(self, what: str, left: float) -> None:
        lines = [
            f"The network now runs: {what}.",
            "",
            f"KEEP THIS SETTING? Reverting in {max(0, int(left))} s unless you choose Keep.",
            "If this console or the server lost the satellite, do nothing: the",
            "previous setting comes back by itself. Esc: decide later.",
        ]
        # Esc is "do nothing" (the change reverts by itself), never Keep; another question the
        # admin is answering is not replaced (ask() says False and this waits).
        self.asking = self.app.ask(
            KEEP, lines, self._keep_buttons(), focus=0, update=self.asking, escape=self.later_decided
        )

    def later_decided(self) -> None:
        pending = self.bridge.network.pending()
        self.later = pending.checkpoint if pending else ""
        self.app.close_modal(KEEP)
        self.asking = False
        self.app.say("The change reverts unless kept here, on another console or with `satbridge network confirm`.")

    def _keep_buttons(self) -> list[tuple[str, views.Action]]:
        return [("Keep this setting", self.keep), ("Decide later", self.later_decided)]

    def _apply(self, coro_factory: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            try:
                await coro_factory()
            except SatbridgeError as exc:
                field = (exc.field or "").split("[")[0]
                if field == "hostname":
                    self.view.host.show_error("hostname", exc.message)
                else:
                    self.form.show_error(field if field in self.form.edits else "address", exc.message)
                return
            self.form.show_error(None, "")
            self.view.host.show_error(None, "")
            await self.refresh()

        self.act(run)

    def apply_static(self) -> None:
        v = self.form.values()

        async def go() -> None:
            state = await self.bridge.network.set_static(
                v["address"], v["gateway"] or None, _words(v["dns"]), _words(v["search"])
            )
            self._nothing_to_do(state)

        self._apply(go)

    def dhcp(self) -> None:
        async def go() -> None:
            state = await self.bridge.network.set_dhcp()
            self._nothing_to_do(state)
            self.filled = False

        self._apply(go)

    def _nothing_to_do(self, state: NetworkState) -> None:
        if state.note:  # the setting asked for is the one in force: no countdown to answer
            self.app.say(f"Network: {state.note}.")

    def set_hostname(self) -> None:
        name = self.view.host.values()["hostname"]

        async def go() -> None:
            await self.bridge.network.set_hostname(name)
            self.app.say(f"Hostname set to {name}.")

        self._apply(go)

    def keep(self) -> None:
        self.asking = False

        async def run() -> None:
            await self.bridge.network.confirm()
            self.app.say("Kept: the new network setting stays.")
            await self.refresh()

        self.act(run)

    def leave(self, go: views.Action) -> None:
        pending = self.bridge.network.pending()
        if pending is None:
            go()
            return

        def stay() -> None:
            self.app.close_modal(LEAVE)
            self.later = ""  # staying to decide: the keep question comes back

        def leave_it() -> None:
            self.app.close_modal(LEAVE)
            self.asking = False
            go()

        self.app.ask(
            LEAVE,
            [
                f"{pending.what} reverts in {max(0, int(pending.deadline - self.bridge.pairing.clock()))} s",
                "unless kept. Leave the screen and let it revert?",
            ],
            [("Stay and decide", stay), ("Leave; it reverts", leave_it)],
            focus=0,
        )


def _words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").split() if w]
