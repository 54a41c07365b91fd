"""Widgets only: no I/O, no services. Plain ASCII, no colours (a vt220 serial console): the
focus is reverse video, fields are in brackets, boxes are drawn with + - |."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import urwid

from satbridge.menu.term import plain

Action = Callable[[], None]
# (name, foreground, background, mono): with colors=1 urwid draws the mono column, so each
# entry names it; reverse video ("standout") and bold are what a vt220 has.
PALETTE = [
    ("title", "bold", "", "bold"),
    ("focus", "standout", "", "standout"),
    ("field", "underline", "", "underline"),
    ("error", "bold", "", "bold"),
    ("match", "standout", "", "standout"),
    ("banner", "bold", "", "bold"),
]


def screen(title: str, body: urwid.Widget, footer: str = "Esc back   F1 help") -> urwid.Frame:
    head = urwid.Pile([urwid.Text(("title", f" satbridge - {title}")), urwid.Divider("=")])
    return urwid.Frame(body, header=head, footer=urwid.Pile([urwid.Divider("-"), urwid.Text(footer)]))


class _Button(urwid.Button):
    button_left = urwid.Text("<")
    button_right = urwid.Text(">")


def button(label: str, on_press: Action) -> urwid.Widget:
    b = _Button(label, on_press=lambda _b: on_press())
    return urwid.AttrMap(b, None, focus_map="focus")


class Field(urwid.Edit):
    """One edit field: Ctrl-U clears it (as a shell line does)."""

    def keypress(self, size: tuple[int], key: str) -> str | None:
        if key == "ctrl u":
            self.set_edit_text("")
            return None
        return super().keypress(size, key)


def field_row(label: str, edit: Field, width: int = 40) -> urwid.Widget:
    """`Label            [value      ]`: brackets and an underline show a field on any terminal."""
    return urwid.Columns(
        [
            (18, urwid.Text(label)),
            (1, urwid.Text("[")),
            (width, urwid.AttrMap(edit, "field", focus_map="focus")),
            (1, urwid.Text("]")),
        ]
    )


_CONTAINERS = (urwid.Pile, urwid.Columns, urwid.GridFlow)
Path = tuple[int, ...]


def _leaves(widget: urwid.Widget) -> list[Path]:
    """The focus paths of every focusable widget inside `widget`, in reading order: nested
    Piles and Columns (a screen's button group, a field row) are walked into, not skipped."""
    inner = widget.base_widget
    if isinstance(inner, _CONTAINERS):
        return [(i, *p) for i, (child, _) in enumerate(inner.contents) for p in _leaves(child)]
    return [()] if widget.selectable() else []


def _focus_path(widget: urwid.Widget) -> Path:
    inner = widget.base_widget
    if isinstance(inner, _CONTAINERS) and inner.contents:
        return (inner.focus_position, *_focus_path(inner.focus))
    return ()


class Body(urwid.ListBox):
    """A screen's list: Tab/Shift-Tab visit every field and button in order (wrapping), those
    inside nested Piles and Columns too; Enter in a field moves to the next one."""

    def _here(self) -> Path:
        if not self.body:
            return ()
        return (self.focus_position, *_focus_path(self.focus))

    def _move(self, step: int) -> bool:
        spots = [(i, *p) for i, w in enumerate(self.body) for p in _leaves(w)]
        if not spots:
            return False
        here = self._here()
        later = [p for p in spots if (p > here if step > 0 else p < here)]
        target = (later[0] if step > 0 else later[-1]) if later else (spots[0] if step > 0 else spots[-1])
        self.set_focus(target[0], "above" if step > 0 else "below")
        widget = self.focus
        for position in target[1:]:
            inner = widget.base_widget if widget is not None else None
            if not isinstance(inner, _CONTAINERS):
                break
            inner.focus_position = position
            widget = inner.focus
        return True

    def _in_field(self) -> bool:
        widget = self.focus
        if widget is None:
            return False
        for _ in self._here()[1:]:
            widget = widget.base_widget.focus
        return isinstance(widget.base_widget, Field)

    def keypress(self, size: tuple[int, int], key: str) -> str | None:  # type: ignore[override]
        if key in ("tab", "shift tab"):
            return None if self._move(1 if key == "tab" else -1) else key
        if key == "enter" and self.body and self._in_field():
            self._move(1)
            return None
        return super().keypress(size, key)


def body(widgets: Sequence[urwid.Widget]) -> Body:
    return Body(urwid.SimpleFocusListWalker(list(widgets)))


def text_page(lines: Sequence[str], actions: Sequence[tuple[str, Action]] = ()) -> Body:
    widgets: list[urwid.Widget] = [urwid.Text(plain(line)) for line in lines]
    if actions:
        widgets += [urwid.Divider(), *(button(label, act) for label, act in actions)]
    return body(widgets)


class Form:
    """Labelled fields, each with its own error line (inline validation)."""

    def __init__(self, fields: Sequence[tuple[str, str, str]]) -> None:
        self.edits: dict[str, Field] = {}
        self.errors: dict[str, urwid.Text] = {}
        rows: list[urwid.Widget] = []
        for key, label, value in fields:
            self.edits[key] = Field("", value)
            self.errors[key] = urwid.Text("")
            rows += [field_row(label, self.edits[key]), self.errors[key]]
        self.rows = rows

    def values(self) -> dict[str, str]:
        return {k: e.edit_text.strip() for k, e in self.edits.items()}

    def fill(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self.edits[key].set_edit_text(value)

    def show_error(self, field: str | None, message: str) -> None:
        for key, text in self.errors.items():
            text.set_text(("error", f"  ! {plain(message)}") if key == field else "")


class Dialog(urwid.WidgetWrap):
    """A modal question in an ASCII box; its buttons in a row, the safe one focused; Esc is
    the safe answer."""

    def __init__(
        self,
        title: str,
        lines: Sequence[str],
        buttons: Sequence[tuple[str, Action]],
        *,
        focus: int,
        escape: Action | None = None,
    ) -> None:
        self.on_escape = escape or buttons[focus][1]
        row = urwid.Columns([("pack", button(label, act)) for label, act in buttons], dividechars=3)
        row.focus_position = focus
        self.text = urwid.Text("\n".join(plain(line) for line in lines))
        pile = urwid.Pile([self.text, urwid.Divider(), row])
        pile.focus_position = 2
        box = urwid.LineBox(
            urwid.Padding(pile, left=1, right=1),
            title=plain(title),
            tlcorner="+",
            tline="-",
            lline="|",
            trcorner="+",
            blcorner="+",
            rline="|",
            bline="-",
            brcorner="+",
        )
        super().__init__(box)

    def keypress(self, size: tuple[int, ...], key: str) -> str | None:
        if key == "esc":
            self.on_escape()
            return None
        if key in ("tab", "shift tab"):
            key = "right" if key == "tab" else "left"
        super().keypress(size, key)
        return None  # a modal: nothing behind it gets a key


def modal(dialog: urwid.Widget, behind: urwid.Widget) -> urwid.Overlay:
    return urwid.Overlay(dialog, behind, "center", ("relative", 86), "middle", "pack")


def menu(items: Sequence[tuple[str, str, Action]]) -> Body:
    """`key  label` rows; the key (a digit) chooses directly."""
    return body([button(f"{key:<2} {label}" if key else f"   {label}", act) for key, label, act in items])


Cell = str | Sequence[str]


def cell_lines(cell: Cell, width: int) -> list[str]:
    """A cell as the rows it needs, never cut: a list (ports, sources) one item per row, text
    wrapped at spaces, a word longer than the column broken with its rest indented by two."""
    items = [cell] if isinstance(cell, str) else list(cell)
    out: list[str] = []
    for item in items:
        words = plain(item).split(" ")
        line = ""
        for word in words:
            if line and len(line) + 1 + len(word) <= width:
                line += " " + word
                continue
            if line:
                out.append(line)
            line, first = "", True
            while len(word) > max(1, width if first else width - 2):
                take = max(1, width if first else width - 2)
                out.append(word[:take] if first else "  " + word[:take])
                word, first = word[take:], False
            line = word if first else "  " + word
        out.append(line)
    return out or [""]


def table(header: Sequence[str], rows: Sequence[Sequence[Cell]], widths: Sequence[int]) -> list[urwid.Widget]:
    """Columns of fixed widths; a cell that does not fit takes more rows (nothing is cut)."""

    def lines(cells: Sequence[Cell]) -> str:
        cols = [cell_lines(c, w) for c, w in zip(cells, widths, strict=False)]
        height = max(len(c) for c in cols)
        return "\n".join(
            " ".join((c[i] if i < len(c) else "").ljust(w) for c, w in zip(cols, widths, strict=False)).rstrip()
            for i in range(height)
        )

    return [urwid.Text(("title", lines(header))), *(urwid.Text(lines(r)) for r in rows)]


def render_text(widget: urwid.Widget, cols: int = 80, rows: int | None = 24) -> str:
    """The widget as an 80x24 screen of text (rows=None: a flow widget's own height)."""
    canvas = widget.render((cols, rows) if rows else (cols,), focus=True)
    return "\n".join(line.decode(errors="replace") for line in canvas.text)


def render_attrs(widget: urwid.Widget, cols: int = 80, rows: int = 24) -> list[list[tuple[object, str]]]:
    """Each row as (attribute, text) runs: tests find the reverse-video focus with it."""
    canvas = widget.render((cols, rows), focus=True)
    out = []
    for row in canvas.content():
        out.append([(attr, text.decode(errors="replace")) for attr, _cs, text in row])
    return out
