"""The console app: navigation (a stack of screen controllers), the header every screen
shares, modal questions, global keys, and the one-second ticker that keeps every console in
step with the shared state (pairing window, pending network change).

Slow work runs as asyncio tasks on urwid's AsyncioEventLoop (the UI never blocks); errors are
mapped once, into the message line.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import urwid

from satbridge.errors import SatbridgeError
from satbridge.menu import keys, term, views
from satbridge.menu.base import Action, Controller
from satbridge.menu.screens.about import AboutController, HelpController
from satbridge.menu.screens.commission import CommissionController
from satbridge.menu.screens.common import countdown
from satbridge.menu.screens.disconnect import DisconnectController
from satbridge.menu.screens.factory import FactoryResetController
from satbridge.menu.screens.firewall import FirewallController
from satbridge.menu.screens.logs import LogsController
from satbridge.menu.screens.logview import LogViewerController
from satbridge.menu.screens.main import MainMenuController
from satbridge.menu.screens.network import NetworkController
from satbridge.menu.screens.status import StatusController
from satbridge.menu.screens.xcc import XccController

if TYPE_CHECKING:
    from satbridge.core.network import NetworkState
    from satbridge.services.network import Pending
    from satbridge.wiring import Bridge

log = logging.getLogger(__name__)
PALETTE = views.PALETTE
TICK = 1.0  # seconds between refreshes of the header and the live screen
NETWORK_DEADLINE = 2.0  # the header waits this long for the network service, then falls back
SCREENS: dict[str, type[Controller]] = {
    c.name: c
    for c in (
        StatusController,
        CommissionController,
        NetworkController,
        XccController,
        FirewallController,
        LogsController,
        DisconnectController,
        FactoryResetController,
        AboutController,
        HelpController,
    )
}


class MenuApp:
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.message = urwid.Text("")
        self.header = urwid.Text("")
        self.body = urwid.WidgetPlaceholder(urwid.SolidFill(" "))
        self.top = urwid.Frame(self.body, header=self.header, footer=self.message)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.loop: urwid.MainLoop | None = None
        self.viewing = ""
        self.main = MainMenuController(self)
        self.stack: list[Controller] = []
        self.screen_widget: urwid.Widget = urwid.SolidFill(" ")
        self.dialog: views.Dialog | None = None
        self.dialog_title = ""
        self.seen_pending: Pending | None = None
        self.network: NetworkState | None = None  # the network service's answer, for the header
        # A new screen is a full repaint (run() points this at the terminal's clear()).
        self.on_screen_change: Callable[[], None] = lambda: None
        # Every screen and global key is a named action: tests (and keys.py) run them by name.
        self.actions: dict[str, Callable[[], None]] = {
            "back": self.back,
            "quit": self.quit,
            **{name: (lambda name=name: self.open(name)) for name in SCREENS},
        }
        self.update_header()
        self.home()

    # -- plumbing ------------------------------------------------------------------------

    @property
    def controller(self) -> Controller:
        return self.stack[-1] if self.stack else self.main

    @property
    def current(self) -> str:
        return self.controller.name

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
        self.message.set_text(term.plain(text))

    def draw(self) -> None:
        if self.loop is not None:
            self.loop.draw_screen()

    # -- navigation ----------------------------------------------------------------------

    def _show(self, controller: Controller) -> None:
        self.dialog = None
        self.screen_widget = views.screen(controller.title, controller.make_ui(), controller.footer)
        self.body.original_widget = self.screen_widget
        self.say("")
        self.on_screen_change()
        controller.start()

    def open(self, name: str) -> None:
        if name == "quit":
            self.quit()
        if name == "log-viewer":
            controller: Controller = LogViewerController(self, self.viewing)
        else:
            controller = SCREENS[name](self)
        self.stack.append(controller)
        self._show(controller)

    def back(self) -> None:
        """To the screen that opened this one, once the screen agrees (it may ask first)."""
        if not self.stack:
            return
        leaving = self.stack[-1]

        def go() -> None:
            if self.stack and self.stack[-1] is leaving:
                self.stack.pop()
                leaving.stop()
                self._show(self.controller)

        leaving.leave(go)

    def home(self) -> None:
        for controller in self.stack:
            controller.stop()
        self.stack.clear()
        self._show(self.main)

    def main_menu(self) -> None:
        self.home()

    def ask(
        self,
        title: str,
        lines: Sequence[str],
        buttons: Sequence[tuple[str, Action]],
        *,
        focus: int = 0,
        update: bool = False,
        escape: Action | None = None,
    ) -> bool:
        """A modal question over the current screen; `focus` is the safe answer (Esc too,
        unless `escape` says otherwise). A question never replaces another one the admin is
        answering: then nothing shows and False comes back. `update` rewrites the text of the
        question with this title when it is up."""
        if self.dialog is not None:
            if self.dialog_title != title:
                return False
            if update:
                self.dialog.text.set_text(term.plain("\n".join(lines)))
                return True
        self.dialog = views.Dialog(title, lines, buttons, focus=focus, escape=escape)
        self.dialog_title = title
        self.body.original_widget = views.modal(self.dialog, self.screen_widget)
        return True

    def asking(self, title: str) -> bool:
        return self.dialog is not None and self.dialog_title == title

    def close_modal(self, title: str | None = None) -> None:
        """Close the question up (only the one with this title, when given)."""
        if title is not None and not self.asking(title):
            return
        self.dialog = None
        self.dialog_title = ""
        self.body.original_widget = self.screen_widget

    def keypress(self, key: str) -> bool:
        """Unhandled keys: the global bindings (also callable by name, see `run_action`)."""
        action = keys.GLOBAL.get(key)
        if action:
            self.run_action(action)
            return True
        return False

    def run_action(self, name: str) -> None:
        if name == "help":
            self.open("help")
            return
        self.actions[name]()

    def quit(self) -> None:
        raise urwid.ExitMainLoop()

    # -- the shared truth, every second --------------------------------------------------

    def update_header(self) -> None:
        b = self.bridge
        try:
            host = b.status.host
            net = self.network
            if net is not None and net.addresses:  # what the Network screen shows
                addresses = [a.split("/")[0] for a in net.addresses]
            else:  # the service could not answer: what the kernel has
                addresses = [
                    a.address for a in host.addresses() if a.interface != "lo" and not a.address.startswith("fe80")
                ]
            hostname = net.hostname if net is not None and net.hostname else host.hostname()
            p = b.pairing.status()
            pairing = (
                f"PAIRED with {p.peer_name}"
                if p.paired
                else "not paired"
                + (
                    f", window open {countdown((p.window_expires_at or 0) - b.pairing.clock())}"
                    if p.window_open
                    else ""
                )
            )
            parts = [hostname, ", ".join(addresses[:2]) or "no address", pairing]
            pending = b.network.pending()
            if pending is not None:
                left = max(0, int(pending.deadline - b.pairing.clock()))
                parts.append(f"NETWORK CHANGE reverts in {left} s")
            self._announce(pending)
            self.header.set_text(term.plain(" " + " | ".join(parts))[:200])
        except Exception as exc:  # any part's failure: one line in the header, never a dead ticker
            if not isinstance(exc, (SatbridgeError, OSError)):
                log.exception("console header")
            self.header.set_text(term.plain(f" (status unavailable: {_one_line(exc)})")[:200])

    async def read_network(self) -> None:
        """The header's hostname and addresses come from the network service, as the Network
        screen's do; when it cannot answer in time, the header falls back to the kernel's."""
        try:
            self.network = await asyncio.wait_for(self.bridge.network.show(), NETWORK_DEADLINE)
        except (TimeoutError, SatbridgeError, OSError) as exc:
            log.debug("header: the network service did not answer: %s", exc)
            self.network = None

    def _announce(self, pending: Pending | None) -> None:
        """A pending change that went away: kept, or reverted (every console says which)."""
        seen, self.seen_pending = self.seen_pending, pending
        if seen is None or (pending is not None and pending.checkpoint == seen.checkpoint):
            return
        if self.bridge.pairing.clock() >= seen.deadline:
            self.say(f"The network change ({seen.what}) was not kept: the previous setting is back.")
        else:
            self.say(f"The network change ({seen.what}) was kept.")

    async def tick(self) -> None:
        """One refresh of the header and the live screen; a part that fails says so and the
        next tick tries again (the ticker never dies of one bad read)."""
        await self.read_network()
        await asyncio.to_thread(self.update_header)
        await self.refresh_screen()
        self.draw()

    async def refresh_screen(self) -> None:
        controller = self.controller
        try:
            await controller.refresh()
        except SatbridgeError as exc:
            self.say(f"Error: {exc}")
        except Exception as exc:
            log.exception("refreshing the %s screen", controller.name or "main")
            self.say(f"Unexpected error refreshing this screen: {_one_line(exc)} (details in console.log)")

    async def ticker(self) -> None:
        """Refresh the header and the live screen every second, whatever one refresh raised."""
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.tick()
            except Exception:
                log.exception("console ticker")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, (SatbridgeError, OSError)) else f"{type(exc).__name__}: {text}"


def run(bridge: Bridge) -> int:
    """The console's main loop (urwid on asyncio): no mouse, ASCII only on a basic terminal."""
    basic = term.basic_mode()
    if basic:
        urwid.set_encoding("ascii")
    app = MenuApp(bridge)
    aloop = asyncio.new_event_loop()
    asyncio.set_event_loop(aloop)
    loop = urwid.MainLoop(
        app.top,
        PALETTE,
        screen=term.make_screen(basic=basic),
        unhandled_input=app.keypress,
        handle_mouse=False,
        event_loop=urwid.AsyncioEventLoop(loop=aloop),
    )
    app.loop = loop
    app.on_screen_change = loop.screen.clear
    ticker = aloop.create_task(app.ticker())
    quit_signal: list[int] = []

    def on_quit_signal() -> None:
        # Ctrl-\ (SIGQUIT) leaves as F10 does: the terminal is restored (no alternate screen
        # left up, no dead cbreak mode), and the exit code says which signal (128 + 3).
        quit_signal.append(signal.SIGQUIT)
        raise urwid.ExitMainLoop()

    aloop.add_signal_handler(signal.SIGQUIT, on_quit_signal)
    try:
        loop.run()
    finally:
        aloop.remove_signal_handler(signal.SIGQUIT)
        ticker.cancel()
        for controller in app.stack:
            controller.stop()
        aloop.run_until_complete(bridge.aclose())
        aloop.close()
    return 128 + signal.SIGQUIT if quit_signal else 0
