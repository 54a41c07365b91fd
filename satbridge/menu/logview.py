"""The log viewer: scroll, search, jump to the end, follow."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import urwid

from satbridge.menu import keys

if TYPE_CHECKING:
    from satbridge.menu.app import MenuApp

MAX_BYTES = 4 << 20  # the console shows the last 4 MiB of a log


class LogViewer:
    def __init__(self, app: MenuApp, name: str) -> None:
        self.app = app
        self.name = name
        self.walker = urwid.SimpleFocusListWalker([urwid.Text("loading...")])
        self.listbox = urwid.ListBox(self.walker)
        self.search_edit = urwid.Edit("Search: ")
        self.query = ""
        self.following: asyncio.Task[None] | None = None
        self.widget = _Keys(urwid.Frame(self.listbox, footer=self.search_edit), self)

    def start(self) -> None:
        self.app.spawn(self.load())

    async def load(self) -> None:
        sources = {s.name: s for s in self.app.bridge.logs.list()}
        size = sources[self.name].size if self.name in sources else 0
        offset = max(0, size - MAX_BYTES)
        data = b""
        async for chunk in self.app.bridge.logs.download(
            self.name, offset=offset, lines=0 if offset or not self.name.startswith("journal/") else 2000
        ):
            data += chunk.data
        self.walker[:] = [urwid.Text(line) for line in data.decode(errors="replace").splitlines()] or [
            urwid.Text("(empty)")
        ]
        self.end()
        self.size = size

    def end(self) -> None:
        if self.walker:
            self.listbox.set_focus(len(self.walker) - 1)

    def start_of_log(self) -> None:
        if self.walker:
            self.listbox.set_focus(0)

    def search(self, text: str, *, after: int = -1) -> bool:
        self.query = text
        for i in range(after + 1, len(self.walker)):
            if text and text in self.walker[i].text:
                self.listbox.set_focus(i)
                self.app.say(f"found {text!r} at line {i + 1}")
                return True
        self.app.say(f"{text!r} not found")
        return False

    def toggle_follow(self) -> None:
        if self.following:
            self.following.cancel()
            self.following = None
            self.app.say("follow off")
            return

        async def follow() -> None:
            async for chunk in self.app.bridge.logs.download(self.name, offset=getattr(self, "size", 0), follow=True):
                for line in chunk.data.decode(errors="replace").splitlines():
                    self.walker.append(urwid.Text(line))
                self.end()
                self.app.draw()

        self.following = asyncio.get_event_loop().create_task(follow())
        self.app.say("following new lines (f to stop)")

    def action(self, name: str) -> None:
        if name == "end":
            self.end()
        elif name == "start":
            self.start_of_log()
        elif name == "follow":
            self.toggle_follow()
        elif name == "search":
            self.widget.original_widget.focus_position = "footer"
        elif name == "search-next":
            self.search(self.query, after=self.listbox.focus_position)

    def stop(self) -> None:
        if self.following:
            self.following.cancel()


class _Keys(urwid.WidgetWrap):
    """Routes the viewer's keys to its named actions."""

    def __init__(self, frame: urwid.Frame, viewer: LogViewer) -> None:
        super().__init__(frame)
        self.viewer = viewer

    @property
    def original_widget(self) -> urwid.Frame:
        return self._w

    def keypress(self, size: tuple[int, int], key: str) -> str | None:
        frame = self._w
        if frame.focus_position == "footer":
            if key == "enter":
                frame.focus_position = "body"
                self.viewer.search(self.viewer.search_edit.edit_text)
                return None
            if key == "esc":
                frame.focus_position = "body"
                return None
            return frame.keypress(size, key)
        action = keys.LOG_VIEWER.get(key)
        if action:
            self.viewer.action(action)
            return None
        if key in ("q", "esc"):
            self.viewer.stop()
        return frame.keypress(size, key)
