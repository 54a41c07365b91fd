"""What a screen's controller may ask of the app (a Protocol, so screens never import app.py),
and the controller base class (subiquity's per-screen controller: make_ui draws, the rest calls
services)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import urwid

if TYPE_CHECKING:
    from satbridge.wiring import Bridge

Action = Callable[[], None]


class Shell(Protocol):
    bridge: Bridge

    def spawn(self, coro: Awaitable[Any]) -> None: ...

    def say(self, text: str) -> None: ...

    def draw(self) -> None: ...

    def open(self, name: str) -> None: ...

    def back(self) -> None: ...

    def home(self) -> None: ...

    def ask(
        self,
        title: str,
        lines: Sequence[str],
        buttons: Sequence[tuple[str, Action]],
        *,
        focus: int = 0,
        update: bool = False,
        escape: Action | None = None,
    ) -> bool: ...

    def asking(self, title: str) -> bool: ...

    def close_modal(self, title: str | None = None) -> None: ...


class Controller:
    """One screen. `make_ui` returns its view; `refresh` runs every second while it shows;
    `leave(go)` is asked before Back (call `go()` to leave, or ask first)."""

    name = ""
    title = ""
    footer = "Esc back   F1 help"

    def __init__(self, app: Shell) -> None:
        self.app = app
        self.bridge = app.bridge
        self.busy = False

    def idle(self) -> bool:
        """False (and a word to the admin) while this screen's action runs: a second Enter, or
        a second trigger of any kind, is not a second run."""
        if self.busy:
            self.app.say("Still working on the last action: wait for its result.")
        return not self.busy

    def act(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run a confirmed action once: its question closes now (synchronously, so a second
        Enter finds no button), and triggers while it runs are ignored."""
        self.app.close_modal()
        if not self.idle():
            return
        self.busy = True

        async def run() -> None:
            try:
                await work()
            finally:
                self.busy = False

        self.app.spawn(run())

    def make_ui(self) -> urwid.Widget:
        raise NotImplementedError

    def start(self) -> None:
        """Called once the view shows (spawn the first load here)."""

    async def refresh(self) -> None:
        return None

    def leave(self, go: Action) -> None:
        go()

    def stop(self) -> None:
        """The screen is gone: cancel its own tasks."""
