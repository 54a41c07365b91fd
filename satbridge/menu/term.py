"""The terminal: rich or basic (ASCII) mode, one switch for the whole console (as subiquity's
serial console), and a screen that never asks for the mouse.

Basic mode is chosen when TERM is vt100/vt220 (a serial line) or the locale is not UTF-8. It
then sends nothing but ASCII and the sequences a VT220 declares (cursor moves, erase, SGR
bold/reverse/underline, show/hide cursor): no alternate screen, no mode queries, no mouse.
"""

from __future__ import annotations

import codecs
import locale
import os
import re
import sys
from collections.abc import Mapping

import urwid

BASIC_TERMS = ("vt100", "vt102", "vt220", "vt320", "vt52", "dumb", "ansi")
_TYPOGRAPHY = str.maketrans({"…": "...", "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "\u00a0": " "})
# What a VT220 does not declare: private modes other than the cursor's (?25) and autowrap (?7),
# DECRQM queries, OSC strings, and keyboard protocol pushes.
_UNDECLARED = re.compile(
    r"\x1b\[\?(?!25[hl]|7h)[0-9;]*[hlu$]p?|\x1b\[[0-9;?]*\$p|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b\[[<>=][0-9;]*[a-zA-Z]"
)


def c_locale_at_start(env: Mapping[str, str] | None = None) -> bool:
    """Whether the process started in the C/POSIX locale (LANG=C, POSIX, or none at all).

    Python then coerces it (PEP 538: LC_CTYPE=C.UTF-8 put into os.environ) and turns UTF-8 mode
    on by itself (PEP 540): UTF-8 mode on without PYTHONUTF8 asking for it is the sign. An
    admin's own LC_CTYPE=C.UTF-8 is not the C locale, and leaves UTF-8 mode off."""
    env = os.environ if env is None else env
    return bool(sys.flags.utf8_mode) and "PYTHONUTF8" not in env


def basic_mode(env: Mapping[str, str] | None = None, *, c_locale: bool | None = None) -> bool:
    """True for a terminal that gets ASCII only: TERM vt100/vt220 (and kin), or a non-UTF-8
    locale as the process received it (`c_locale`: it started in C/POSIX, see c_locale_at_start;
    then the LC_CTYPE=C.UTF-8 Python's coercion wrote is not the admin's setting)."""
    if c_locale is None:
        c_locale = env is None and c_locale_at_start()
    env = os.environ if env is None else env
    if c_locale and env.get("LC_CTYPE", "").lower().replace("-", "") == "c.utf8":
        env = {k: v for k, v in env.items() if k != "LC_CTYPE"}
    term = env.get("TERM", "").lower()
    if any(term == t or term.startswith(t + "-") for t in BASIC_TERMS):
        return True
    lang = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or ""
    if lang:
        charset = lang.partition(".")[2].partition("@")[0]
        if not charset:
            return lang not in ("C.UTF-8",)  # "C", "POSIX", "de_DE": not UTF-8
        try:
            return codecs.lookup(charset).name != "utf-8"
        except LookupError:
            return True
    if c_locale:
        return True  # no locale at all: C, whatever UTF-8 mode now reports
    return locale.getpreferredencoding(False).lower().replace("-", "") != "utf8"


def plain(text: str) -> str:
    """Text for the console: typographic characters spelled in ASCII, anything else outside
    printable ASCII becomes "?" (a log line, a peer's name, a daemon's message)."""
    text = text.translate(_TYPOGRAPHY)
    return "".join(ch if (" " <= ch <= "~") or ch == "\n" else "?" for ch in text)


CLEAR = "\x1b[H\x1b[2J"  # CUP home, ED whole screen: what a VT100 declares


class BasicScreen(urwid.display.raw.Screen):
    """A raw screen for a VT220: no alternate buffer, no queries, no mouse; a last filter drops
    any sequence a VT220 does not declare and any byte outside ASCII.

    Every row is placed with an absolute move (CUP `ESC[row;colH`), never urwid's relative
    moves of the main buffer (those assume it knows where the cursor is, and one wrong guess
    on a serial line makes every later frame drift). A new screen (`clear()`) is a full
    repaint after ED `ESC[2J`, so nothing from the screen before stays."""

    _erase = True

    def _detect_terminal_modes(self) -> None:
        return None

    def _mouse_tracking(self, enable: bool) -> None:
        self._mouse_tracking_enabled = False

    def _start(self, alternate_buffer: bool = True, *args: object, **kwargs: object) -> None:
        super()._start(False)
        self._rows_used = None  # the alternate buffer's drawing: absolute positions, whole screen
        self.clear()

    def clear(self) -> None:
        super().clear()
        self._erase = True

    def draw_screen(self, size: tuple[int, int], canvas: urwid.Canvas) -> None:
        if self._erase and self._started:
            self._erase = False
            self.write(CLEAR)
        super().draw_screen(size, canvas)

    def write(self, data: str) -> None:
        data = _UNDECLARED.sub("", data)
        super().write(data.encode("ascii", "replace").decode("ascii"))


def make_screen(*, basic: bool) -> urwid.display.raw.Screen:
    screen = BasicScreen() if basic else urwid.display.raw.Screen()
    screen.set_terminal_properties(colors=1)  # reverse video and bold only: any terminal has them
    return screen
