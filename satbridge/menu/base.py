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
    ) -> None: ...

    def close_modal(self) -> None: ...


class Controller:
    """One screen. `make_ui` returns its view; `refresh` runs every second while it shows;
    `leave(go)` is asked before Back (call `go()` to leave, or ask first)."""

    name = ""
    title = ""
    footer = "Esc back   F1 help"

    def __init__(self, app: Shell) -> None:
        self.app = app
        self.bridge = app.bridge

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
