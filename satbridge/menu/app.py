"""The menu's controller: one method per screen, each calling services/ in-process.

Slow work runs as asyncio tasks on urwid's AsyncioEventLoop (the UI never blocks); errors are
mapped once, into a message line on the screen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import urwid

from satbridge.core.addresses import reachable_addresses
from satbridge.errors import SatbridgeError
from satbridge.menu import keys, views

if TYPE_CHECKING:
    from satbridge.core.status import Status
    from satbridge.wiring import Bridge

log = logging.getLogger(__name__)
PALETTE = [("title", "bold", ""), ("reversed", "standout", ""), ("error", "bold", "")]


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def _network_line(n: Any) -> str:
    if n is None:
        return "-"
    how = {"auto": "DHCP", "manual": "static"}.get(n.method, n.method or "not configured")
    return f"{n.interface or '-'}, {how}" + (f", gateway {n.gateway}" if n.gateway else "")


class MenuApp:
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.message = urwid.Text("")
        self.body = urwid.WidgetPlaceholder(urwid.SolidFill(" "))
        self.top = urwid.Frame(self.body, footer=self.message)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.refresh: Callable[[], Awaitable[None]] | None = None
        self.loop: urwid.MainLoop | None = None
        self.current = "menu"
        # Every screen and global key is a named action: tests (and keys.py) run them by name.
        self.actions: dict[str, Callable[[], None]] = {
            "help": self.help,
            "back": self.main_menu,
            "quit": self.quit,
            "status": self.status,
            "commission": self.commission,
            "network": self.network,
            "xcc": self.xcc,
            "firewall": self.firewall,
            "logs": self.logs,
            "disconnect": self.disconnect,
            "factory-reset": self.factory_reset,
            "about": self.about,
        }
        self.main_menu()

    # -- plumbing ------------------------------------------------------------------------

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run slow work without blocking the UI; keep a reference; show errors as a message."""

        async def guarded() -> None:
            try:
                await coro
            except SatbridgeError as exc:
                self.say(f"Error: {exc}")
            except Exception as exc:
                log.exception("console action failed")
                self.say(f"Unexpected error: {exc}")
            self.draw()

        task = asyncio.get_event_loop().create_task(guarded())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def say(self, text: str) -> None:
        self.message.set_text(text)

    def draw(self) -> None:
        if self.loop is not None:
            self.loop.draw_screen()

    def show(self, name: str, widget: urwid.Widget, refresh: Callable[[], Awaitable[None]] | None = None) -> None:
        self.current = name
        self.body.original_widget = widget
        self.refresh = refresh
        self.say("")

    def keypress(self, key: str) -> bool:
        """Unhandled keys: the global bindings (also callable by name, see `run_action`)."""
        action = keys.GLOBAL.get(key)
        if action:
            self.run_action(action)
            return True
        return False

    def run_action(self, name: str) -> None:
        self.actions[name]()

    async def ticker(self) -> None:
        """Refresh live screens (status, commission countdown) every second."""
        while True:
            await asyncio.sleep(1)
            if self.refresh is not None:
                try:
                    await self.refresh()
                except SatbridgeError as exc:
                    self.say(f"Error: {exc}")
                self.draw()

    def quit(self) -> None:
        raise urwid.ExitMainLoop()

    # -- screens -------------------------------------------------------------------------

    def main_menu(self) -> None:
        items = [
            ("Status", self.status),
            ("Commission / connect", self.commission),
            ("Network", self.network),
            ("XCC service", self.xcc),
            ("Firewall", self.firewall),
            ("Logs", self.logs),
            ("Disconnect from server", self.disconnect),
            ("Factory reset", self.factory_reset),
            ("About", self.about),
            ("Help", self.help),
            ("Quit", self.quit),
        ]
        self.show("menu", views.screen("menu", views.menu(items), "Enter choose   F1 help   F10 quit"))

    def status(self) -> None:
        text = urwid.Text("reading the status...")

        def render(s: Status) -> None:
            p = s.pairing
            lines = [
                f"Hostname:        {s.hostname}",
                f"Addresses:       {', '.join(a.address for a in s.addresses if a.interface != 'lo') or '-'}",
                f"Paired:          {('yes, with ' + p.peer_name) if p.paired else 'no'}",
                f"Pairing window:  {'open until ' + _when(p.window_expires_at) if p.window_open else 'closed'}",
                f"XCC:             {self._xcc_line(s.xcc)}",
                f"Firewall:        revision {s.firewall_revision}",
                f"Network:         {_network_line(s.network)}",
                f"Bridge version:  {s.bridge_version}",
                f"Generation:      {s.state_generation} (instance {s.instance_id[:12]})",
                "",
                *(f"WARNING: {w}" for w in s.warnings),
            ]
            text.set_text("\n".join(lines))

        async def refresh() -> None:
            # The last complete status stays on screen while the next one is read.
            render(await self.bridge.status.get())

        async def first() -> None:
            # Each part appears as soon as it answers; a slow daemon delays only its own line.
            async for s in self.bridge.status.updates():
                render(s)
                self.draw()

        self.show("status", views.screen("status", urwid.Filler(text, valign="top")), refresh)
        self.spawn(first())

    @staticmethod
    def _xcc_line(x: Any) -> str:
        if x is None:
            return "state unavailable"
        if not x.installed:
            return "not installed"
        return f"{x.version}, {x.unit.active_state}/{x.unit.sub_state}"

    def commission(self) -> None:
        text = urwid.Text("opening a pairing window...")
        server = self.bridge.config.server
        window: dict[str, Any] = {}

        async def refresh() -> None:
            p = self.bridge.pairing.status()
            if p.paired and window.get("opened_at", 0) <= (p.paired_at or 0):
                text.set_text(
                    f"PAIRED with {p.peer_name} at {_when(p.paired_at)}.\n\nThe server can now manage this satellite."
                )
                self.refresh = None
                return
            if not p.window_open:
                text.set_text(
                    "The pairing window is closed (expired, or too many wrong codes).\nOpen it again from the menu."
                )
                return
            left = int((p.window_expires_at or 0) - self.bridge.pairing.clock())
            addresses = reachable_addresses([server.pairing_listen, server.listen], self.bridge.status.host.addresses())
            text.set_text(
                "\n".join(
                    [
                        "On the central server, pair with this satellite using:",
                        "",
                        f"  Code:         {window['code']}",
                        f"  Fingerprint:  {window['fingerprint'][:32]}",
                        f"                {window['fingerprint'][32:]}",
                        f"  Addresses:    {', '.join(addresses) or '-'}",
                        f"  Ports:        pairing {server.pairing_listen.port}, management {server.listen.port}",
                        "",
                        f"Waiting for the server... {left // 60}:{left % 60:02d} left, {p.attempts_left} attempts.",
                    ]
                )
            )

        async def open_window() -> None:
            opened = await asyncio.to_thread(self.bridge.pairing.open_window)
            window.update(code=opened.code, fingerprint=opened.fingerprint, opened_at=self.bridge.pairing.clock())
            await refresh()

        self.show("commission", views.screen("commission / connect", urwid.Filler(text, valign="top")), refresh)
        self.refresh = None
        self.spawn(self._then(open_window(), lambda: setattr(self, "refresh", refresh)))

    async def _then(self, first: Awaitable[None], after: Callable[[], None]) -> None:
        await first
        after()

    def network(self) -> None:
        net = self.bridge.network
        info = urwid.Text("reading the network...")
        form = views.Form([("address", "Address/prefix", ""), ("gateway", "Gateway", ""), ("dns", "DNS servers", "")])
        keep = urwid.Text("")

        async def load() -> None:
            s = await net.show()
            info.set_text(
                f"{s.interface}: { {'auto': 'DHCP', 'manual': 'static'}.get(s.method, s.method or '-') }, "
                f"{', '.join(s.addresses) or 'no address'}; gateway {s.gateway or '-'}; "
                f"DNS {', '.join(s.dns) or '-'}"
            )
            if s.pending_rollback_in:
                keep.set_text(f"KEEP THIS SETTING? Reverting in {s.pending_rollback_in:.0f} s unless you choose Keep.")
            else:
                keep.set_text("")

        async def apply_static() -> None:
            v = form.values()
            dns = [d for d in v["dns"].replace(",", " ").split() if d]
            try:
                await net.set_static(v["address"], v["gateway"] or None, dns)
            except SatbridgeError as exc:
                field = (exc.field or "").split("[")[0]
                form.show_error(field if field in form.edits else "address", exc.message)
                return
            form.show_error(None, "")
            await load()

        async def dhcp() -> None:
            await net.set_dhcp()
            await load()

        async def confirm() -> None:
            await net.confirm()
            self.say("Kept.")
            await load()

        body = urwid.ListBox(
            urwid.SimpleFocusListWalker(
                [
                    info,
                    urwid.Divider(),
                    urwid.Text("Static address:"),
                    *form.rows,
                    views.button("Apply static address", lambda: self.spawn(apply_static())),
                    views.button("Use DHCP", lambda: self.spawn(dhcp())),
                    urwid.Divider(),
                    keep,
                    views.button("Keep this setting", lambda: self.spawn(confirm())),
                ]
            )
        )
        self.show("network", views.screen("network", body), load)
        self.network_form = form
        self.spawn(load())

    def xcc(self) -> None:
        text = urwid.Text("reading XCC...")

        async def load() -> None:
            text.set_text(f"XCC: {self._xcc_line(await self.bridge.xcc.status())}")

        def control(verb: str) -> Callable[[], None]:
            async def run() -> None:
                self.say(f"{verb}ing XCC...")
                self.draw()
                await self.bridge.xcc.control(verb)
                self.say(f"XCC {verb}: done")
                await load()

            return lambda: self.spawn(run())

        body = urwid.ListBox(
            urwid.SimpleFocusListWalker(
                [
                    text,
                    urwid.Divider(),
                    views.button("Start", control("start")),
                    views.button("Stop", control("stop")),
                    views.button("Restart", control("restart")),
                ]
            )
        )
        self.show("xcc", views.screen("XCC service", body), load)
        self.spawn(load())

    def firewall(self) -> None:
        from satbridge.core.firewall import plan

        walker = urwid.SimpleFocusListWalker([urwid.Text("reading the firewall...")])

        async def load() -> None:
            state = await self.bridge.firewall.get()
            lines = plan(state.rules, self.bridge.firewall.bridge_ports).save_lines("v4")
            walker[:] = [
                urwid.Text(f"Revision {state.revision}; default {state.rules.default_action.value}"),
                urwid.Divider(),
                *(urwid.Text(line) for line in lines),
                urwid.Divider(),
                views.button("Reset to the factory rules", ask),
            ]

        def ask() -> None:
            self.confirm("Reset the firewall to the factory rules?", lambda: self.spawn(reset()))

        async def reset() -> None:
            state = await self.bridge.firewall.reset(by="console")
            self.firewall()
            self.say(f"Firewall reset (revision {state.revision}).")

        self.show("firewall", views.screen("firewall", urwid.ListBox(walker)))
        self.spawn(load())

    def logs(self) -> None:
        sources = self.bridge.logs.list()
        items = [
            (f"{s.name}  ({s.size} bytes)" if s.kind == "file" else s.name, (lambda name=s.name: self.log_viewer(name)))
            for s in sources
        ]
        self.show("logs", views.screen("logs", views.menu(items)))

    def log_viewer(self, name: str) -> None:
        from satbridge.menu.logview import LogViewer

        viewer = LogViewer(self, name)
        self.show(
            "log-viewer",
            views.screen(f"log {name}", viewer.widget, "/ search  n next  G end  g start  f follow  q back"),
        )
        viewer.start()

    def disconnect(self) -> None:
        async def run() -> None:
            done = await self.bridge.disconnect.disconnect(by="console")
            self.main_menu()
            self.say(
                "Disconnected."
                + (" XCC stopped." if done.xcc_stopped else "")
                + (f" {done.problem}" if done.problem else "")
            )

        self.confirm(
            "Disconnect from the central server? Its access ends at once, XCC stops.", lambda: self.spawn(run())
        )

    def factory_reset(self) -> None:
        edit = urwid.Edit("Type RESET to confirm: ")
        progress = urwid.Text("")

        async def run() -> None:
            lines = []
            async for step in self.bridge.factory_reset.run(by="console"):
                lines.append(f"[{'done' if step.done else 'FAILED'}] {step.name}: {step.detail}")
                progress.set_text("\n".join(lines))
                self.draw()
            self.say(
                "Factory reset complete."
                if all(line.startswith("[done]") for line in lines)
                else "Some steps failed: run the factory reset again."
            )

        def go() -> None:
            if edit.edit_text.strip() != "RESET":
                self.say("Type RESET (in capitals) to confirm.")
                return
            progress.set_text("resetting...")
            self.spawn(run())

        body = urwid.ListBox(
            urwid.SimpleFocusListWalker(
                [
                    urwid.Text(
                        "This removes XCC, the pairing, the firewall rules and the network settings, and makes "
                        "a new identity. The bridge and its config stay."
                    ),
                    urwid.Divider(),
                    urwid.AttrMap(edit, None, focus_map="reversed"),
                    views.button("Reset the satellite", go),
                    urwid.Divider(),
                    progress,
                ]
            )
        )
        self.show("factory-reset", views.screen("factory reset", body))
        self.reset_edit = edit

    def about(self) -> None:
        from satbridge import __version__

        self.show(
            "about",
            views.screen(
                "about",
                views.text_page(
                    [
                        f"Satellite Bridge {__version__}",
                        f"XCC: {self.bridge.xcc.version() or 'not installed'}",
                        f"Identity: {self.bridge.identity.current().fingerprint.hex()[:32]}",
                    ]
                ),
            ),
        )

    def help(self) -> None:
        self.show("help", views.screen("help", views.text_page(keys.help_lines())))

    def confirm(self, question: str, yes: Callable[[], None]) -> None:
        self.show(
            "confirm",
            views.screen(
                "confirm",
                views.text_page([question], [("Yes", yes), ("No", self.main_menu)]),
            ),
        )


def run(bridge: Bridge) -> int:
    """The console's main loop (urwid on asyncio)."""
    app = MenuApp(bridge)
    aloop = asyncio.new_event_loop()
    asyncio.set_event_loop(aloop)
    screen = urwid.raw_display.Screen()
    screen.set_terminal_properties(colors=1)
    loop = urwid.MainLoop(
        app.top, PALETTE, screen=screen, unhandled_input=app.keypress, event_loop=urwid.AsyncioEventLoop(loop=aloop)
    )
    app.loop = loop
    ticker = aloop.create_task(app.ticker())
    try:
        loop.run()
    finally:
        ticker.cancel()
        aloop.run_until_complete(bridge.aclose())
        aloop.close()
    return 0
