"""Factory reset: says what goes (XCC version, pairing, rule count, network, identity), wants
RESET typed, starts on Back, and shows each step's progress."""

from __future__ import annotations

import urwid

from satbridge.errors import FailedPrecondition
from satbridge.menu import views
from satbridge.menu.base import Controller
from satbridge.menu.term import plain


class FactoryResetController(Controller):
    name = "factory-reset"
    title = "factory reset"

    def make_ui(self) -> urwid.Widget:
        self.summary = urwid.Text("reading what a reset would change...")
        self.edit = views.Field("", "")
        self.progress = urwid.Text("")
        self.running = False
        self.page = views.body(
            [
                self.summary,
                urwid.Divider(),
                views.button("Back (keep everything)", self.app.back),
                views.field_row("Type RESET", self.edit, 10),
                views.button("Reset the satellite", self.go),
                urwid.Divider(),
                self.progress,
            ]
        )
        self.page.set_focus(2)
        return self.page

    def start(self) -> None:
        self.app.spawn(self.describe())

    async def describe(self) -> None:
        b = self.bridge
        p = b.pairing.status()
        rules = (await b.firewall.get()).rules
        net = await b.network.show()
        how = {"auto": "DHCP", "manual": "static " + ", ".join(net.addresses)}.get(net.method, net.method or "-")
        lines = [
            "A factory reset puts the satellite back as delivered:",
            f"  XCC:       {('version ' + b.xcc.version()) if b.xcc.installed() else 'not installed'} -> removed",
            f"  Pairing:   {('paired with ' + p.peer_name) if p.paired else 'not paired'} -> none",
            f"  Firewall:  {len(rules.rules)} rules from the server -> the factory rules",
            f"  Network:   {how} -> DHCP",
            f"  Identity:  {b.identity.current().fingerprint.hex()[:16]} -> a new one (old certificates die)",
            "The bridge and its config stay.",
        ]
        self.summary.set_text(plain("\n".join(lines)))

    def go(self) -> None:
        if self.running:
            return
        if self.edit.edit_text.strip() != "RESET":
            self.app.say("Type RESET (in capitals) to confirm.")
            return
        self.running = True
        self.progress.set_text("resetting...")

        async def run() -> None:
            lines: list[str] = []
            try:
                async for step in self.bridge.factory_reset.run(by="console"):
                    lines.append(plain(f"[{'done' if step.done else 'FAILED'}] {step.name}: {step.detail}"))
                    self.progress.set_text("\n".join(lines))
                    self.app.draw()
            except FailedPrecondition as exc:  # another console, the CLI or the server is resetting
                self.progress.set_text(plain(f"Not started: {exc}"))
                self.app.say(f"Not started: {exc}")
                return
            finally:
                self.running = False
            self.app.say(
                "Factory reset complete."
                if all(line.startswith("[done]") for line in lines)
                else "Some steps failed: run the factory reset again."
            )

        self.app.spawn(run())
