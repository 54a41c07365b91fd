"""Widgets only: no I/O, no services. Plain ASCII, no colours needed (a vt220 serial console)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import urwid

Action = Callable[[], None]


def header(title: str) -> urwid.Widget:
    return urwid.Pile([urwid.Text(("title", f" satbridge - {title}")), urwid.Divider("=")])


def screen(title: str, body: urwid.Widget, footer: str = "q back   F1 help") -> urwid.Frame:
    return urwid.Frame(body, header=header(title), footer=urwid.Pile([urwid.Divider("-"), urwid.Text(footer)]))


def button(label: str, on_press: Action) -> urwid.Widget:
    b = urwid.Button(label, on_press=lambda _b: on_press())
    return urwid.AttrMap(b, None, focus_map="reversed")


def menu(items: Sequence[tuple[str, Action]]) -> urwid.ListBox:
    return urwid.ListBox(urwid.SimpleFocusListWalker([button(label, act) for label, act in items]))


def text_page(lines: Sequence[str], actions: Sequence[tuple[str, Action]] = ()) -> urwid.ListBox:
    widgets: list[urwid.Widget] = [urwid.Text(line) for line in lines]
    if actions:
        widgets += [urwid.Divider(), *(button(label, act) for label, act in actions)]
    return urwid.ListBox(urwid.SimpleFocusListWalker(widgets))


class Form:
    """Labelled edit fields with an error line each (inline validation)."""

    def __init__(self, fields: Sequence[tuple[str, str, str]]) -> None:
        self.edits: dict[str, urwid.Edit] = {}
        self.errors: dict[str, urwid.Text] = {}
        rows: list[urwid.Widget] = []
        for key, label, value in fields:
            self.edits[key] = urwid.Edit(f"{label:<18}", value)
            self.errors[key] = urwid.Text("")
            rows += [urwid.AttrMap(self.edits[key], None, focus_map="reversed"), self.errors[key]]
        self.rows = rows

    def values(self) -> dict[str, str]:
        return {k: e.edit_text.strip() for k, e in self.edits.items()}

    def show_error(self, field: str | None, message: str) -> None:
        for key, text in self.errors.items():
            text.set_text(f"  ! {message}" if key == field else "")


def render_text(widget: urwid.Widget, cols: int = 80, rows: int | None = 24) -> str:
    """The widget as an 80x24 screen of text (rows=None: a flow widget's own height)."""
    canvas = widget.render((cols, rows) if rows else (cols,), focus=True)
    return "\n".join(line.decode(errors="replace") for line in canvas.text)
