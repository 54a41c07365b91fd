"""The log viewer, like `less` for the keys it offers: `/` search (case-insensitive unless the
text has capitals), the match marked, `n`/`N` next/previous wrapping around, `g`/`G`, and `f`
follow, which keeps to the end only while you are at the end (PgUp stops it scrolling). Line
numbers are the file's own (lines end at \n only, as `grep -n` counts), also when only its last
4 MiB are loaded (a banner says so, and a line begun before the tail is shown with its start
marked); a line too long to draw is cut for display with a marker; after a truncation while
following the numbering starts again, and says so."""

from __future__ import annotations

import asyncio
import contextlib

import urwid

from satbridge.core.logs import printable
from satbridge.errors import SatbridgeError
from satbridge.menu import keys, views
from satbridge.menu.base import Controller
from satbridge.menu.term import plain

MAX_BYTES = 4 << 20  # the console loads the last 4 MiB of a log
MAX_SHOWN = 8000  # characters of one line drawn (a 4 MiB line would be 50,000 screen rows)
CUT = "..."
TRUNCATED = "-- the file was truncated: numbering starts again --"


def split_lines(data: bytes) -> list[bytes]:
    """Lines as `grep -n` counts them: split on \n only (\r, \f, \v, NEL, U+2028 stay in the
    line, shown escaped); a last line without its \n is a line too."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def matcher(text: str) -> tuple[str, bool]:
    """(needle, case-sensitive): less's smart case."""
    sensitive = any(ch.isupper() for ch in text)
    return (text if sensitive else text.lower()), sensitive


def spans(line: str, needle: str, sensitive: bool) -> list[tuple[int, int]]:
    hay = line if sensitive else line.lower()
    out, start = [], 0
    while needle and (i := hay.find(needle, start)) >= 0:
        out.append((i, i + len(needle)))
        start = i + len(needle)
    return out


class Line(urwid.Text):
    def __init__(self, number: int, text: str, *, head_cut: bool = False) -> None:
        self.number = number
        raw = plain(printable(text))  # controls shown as \xNN, never sent, never dropped unseen
        if len(raw) > MAX_SHOWN:  # cut for display only, and said so
            raw = f"{raw[:MAX_SHOWN]}{CUT} [{len(raw) - MAX_SHOWN} more characters not shown]"
        self.raw = (CUT if head_cut else "") + raw
        super().__init__(self.raw, wrap="any")

    def mark(self, needle: str, sensitive: bool) -> None:
        hits = spans(self.raw, needle, sensitive)
        if not hits:
            self.set_text(self.raw)
            return
        markup: list[str | tuple[str, str]] = []
        pos = 0
        for a, b in hits:
            markup += [self.raw[pos:a], ("match", self.raw[a:b])]
            pos = b
        markup.append(self.raw[pos:])
        self.set_text(markup)

    def selectable(self) -> bool:
        return True

    def keypress(self, size: tuple[int], key: str) -> str | None:
        return key


class LogView(urwid.WidgetWrap):
    def __init__(self, controller: LogViewerController) -> None:
        self.controller = controller
        self.walker = urwid.SimpleFocusListWalker([urwid.Text("loading...")])
        self.listbox = urwid.ListBox(self.walker)
        self.search_edit = views.Field("Search: ")
        self.frame = urwid.Frame(self.listbox, footer=self.search_edit)
        self.frame.focus_position = "body"
        super().__init__(self.frame)

    def keypress(self, size: tuple[int, int], key: str) -> str | None:
        if self.frame.focus_position == "footer":
            if key == "enter":
                self.frame.focus_position = "body"
                self.controller.search(self.search_edit.edit_text)
                return None
            if key == "esc":
                self.frame.focus_position = "body"
                return None
            return self.frame.keypress(size, key)
        action = keys.LOG_VIEWER.get(key)
        if action:
            self.controller.action(action)
            return None
        return self.frame.keypress(size, key)


class LogViewerController(Controller):
    name = "log-viewer"
    footer = "/ search  n/N next/prev  g/G start/end  f follow  Esc back"

    def __init__(self, app, name: str) -> None:  # type: ignore[no-untyped-def]
        super().__init__(app)
        self.log_name = name
        self.title = f"log {plain(name)}"
        self.query = ""
        self.size = 0
        self.first_line = 1
        self.following: asyncio.Task[None] | None = None
        self.marked: Line | None = None

    def make_ui(self) -> urwid.Widget:
        self.view = LogView(self)
        return self.view

    @property
    def walker(self) -> urwid.SimpleFocusListWalker:
        return self.view.walker

    @property
    def listbox(self) -> urwid.ListBox:
        return self.view.listbox

    def start(self) -> None:
        self.app.spawn(self.load())

    async def _lines_before(self, offset: int) -> tuple[int, bool]:
        """(newlines in the first `offset` bytes, whether byte offset-1 ends a line)."""
        count, last = 0, b"\n"
        async with contextlib.aclosing(self.bridge.logs.download(self.log_name)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                data = chunk.data[: max(0, offset - chunk.offset)]
                count += data.count(b"\n")
                if data:
                    last = data[-1:]
                if chunk.offset + len(chunk.data) >= offset:
                    break
        return count, last == b"\n"

    async def load(self) -> None:
        size = self._size()
        offset = max(0, size - MAX_BYTES)
        data = b""
        journal = self.log_name.startswith("journal/")
        async for chunk in self.bridge.logs.download(self.log_name, offset=offset, lines=2000 if journal else 0):
            data += chunk.data
        banner: list[urwid.Widget] = []
        first, head_cut = 1, False
        if offset:
            before, whole = await self._lines_before(offset)
            first = before + 1
            head_cut = not whole  # the first line loaded began before the tail: shown, marked
            banner = [
                urwid.Text(
                    (
                        "banner",
                        f"-- only the last {MAX_BYTES >> 20} MiB of {size} bytes are loaded: "
                        f"from line {first}{' (its start not loaded)' if head_cut else ''};"
                        " earlier lines are not shown --",
                    )
                )
            ]
        self.first_line = first
        lines = [
            Line(first + i, raw.decode(errors="replace"), head_cut=head_cut and i == 0)
            for i, raw in enumerate(split_lines(data))
        ]
        self.walker[:] = banner + lines or [urwid.Text("(empty)")]
        self.size = size
        self.end()

    def _size(self) -> int:
        sources = {s.name: s for s in self.bridge.logs.list()}
        return sources[self.log_name].size if self.log_name in sources else 0

    def _lines(self) -> list[int]:
        return [i for i, w in enumerate(self.walker) if isinstance(w, Line)]

    def end(self) -> None:
        if self.walker:
            self.listbox.set_focus(len(self.walker) - 1)

    def start_of_log(self) -> None:
        if self.walker:
            self.listbox.set_focus(0)

    def search(self, text: str, *, backwards: bool = False, again: bool = False) -> bool:
        self.query = text
        if not text:
            return False
        needle, sensitive = matcher(text)
        indexes = self._lines()
        here = self.listbox.focus_position if self.walker else 0
        if backwards:
            order = [i for i in reversed(indexes) if i < here] + [i for i in reversed(indexes) if i >= here]
        else:
            start = here + 1 if again else here
            order = [i for i in indexes if i >= start] + [i for i in indexes if i < start]
        for i in order:
            line = self.walker[i]
            if spans(line.raw, needle, sensitive):
                wrapped = (i < here) if not backwards else (i > here)
                if self.marked is not None:
                    self.marked.mark("", False)
                line.mark(needle, sensitive)
                self.marked = line
                self.listbox.set_focus(i)
                self.app.say(f"found {text!r} at line {line.number}" + (" (search wrapped)" if wrapped else ""))
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
            number = max([self.walker[i].number for i in self._lines()] or [self.first_line - 1]) + 1
            pending = b""  # a line written in pieces is shown once it is whole
            received = self.size  # bytes of the file as it is now, read so far
            try:
                async for chunk in self.bridge.logs.download(self.log_name, offset=self.size, follow=True):
                    if not chunk.data:
                        continue
                    at_end = not self.walker or self.listbox.focus_position >= len(self.walker) - 1
                    received += len(chunk.data)
                    if self._size() < received:  # truncated (or replaced): what came is its start
                        received, number, pending = len(chunk.data), 1, b""
                        self.walker.append(urwid.Text(("banner", TRUNCATED)))
                        self.app.say(TRUNCATED.strip("- "))
                    *whole, pending = (pending + chunk.data).split(b"\n")
                    for raw in whole:
                        self.walker.append(Line(number, raw.decode(errors="replace")))
                        number += 1
                    if at_end:  # like less +F: keep to the end only while the reader is there
                        self.end()
                    self.app.draw()
            except SatbridgeError as exc:  # e.g. the name now means a FIFO or a link out
                self.following = None
                self.app.say(f"follow stopped: {exc}")
                self.app.draw()

        self.following = asyncio.get_event_loop().create_task(follow())
        self.end()
        self.app.say("following new lines (f to stop; PgUp looks back without stopping)")

    def action(self, name: str) -> None:
        if name == "end":
            self.end()
        elif name == "start":
            self.start_of_log()
        elif name == "follow":
            self.toggle_follow()
        elif name == "search":
            self.view.search_edit.set_edit_text("")
            self.view.frame.focus_position = "footer"
        elif name == "search-next":
            self.search(self.query, again=True)
        elif name == "search-previous":
            self.search(self.query, backwards=True)

    def stop(self) -> None:
        if self.following:
            self.following.cancel()
            self.following = None
