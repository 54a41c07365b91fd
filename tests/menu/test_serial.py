"""The basic (serial) screen as a VT220 sees it: the bytes a session writes, fed through a
VT100/VT220 emulator (pyte), must leave exactly what urwid rendered on an 80x24 screen."""

from __future__ import annotations

import io
import os
import re

import pyte

from satbridge.menu import term
from satbridge.menu.app import MenuApp
from satbridge.menu.views import render_text
from tests.menu.test_app import app, settle  # noqa: F401 - the fixture

SIZE = (80, 24)


class Session:
    """A MenuApp drawn on a BasicScreen writing into a buffer, as run() draws it."""

    def __init__(self, menu: MenuApp) -> None:
        self.out = io.StringIO()
        self.input = open(os.devnull, "rb")  # noqa: SIM115 - closed in close()
        self.screen = term.BasicScreen(input=self.input, output=self.out)
        self.screen.set_terminal_properties(colors=1)
        self.menu = menu
        self.menu.on_screen_change = self.screen.clear  # what run() wires to the loop's screen
        self.screen.start()
        self.vt = pyte.Screen(*SIZE)
        self.stream = pyte.Stream(self.vt)

    def draw(self) -> None:
        self.screen.draw_screen(SIZE, self.menu.top.render(SIZE, focus=True))

    def emulated(self) -> str:
        self.stream.feed(self.out.getvalue())
        self.out.seek(0)
        self.out.truncate()
        return "\n".join(line.rstrip() for line in self.vt.display)

    def expected(self) -> str:
        return "\n".join(line.rstrip() for line in render_text(self.menu.top).splitlines())

    def close(self) -> None:
        self.screen.stop()
        self.input.close()


async def test_every_screen_lands_on_its_own_rows_on_a_vt220(app):  # noqa: F811
    s = Session(app)
    try:
        s.draw()
        assert s.emulated() == s.expected()
        for step in ("about", "back", "status", "back", "network", "back"):
            app.run_action(step)
            await settle(app)
            s.draw()
            assert s.emulated() == s.expected(), f"after {step}"
            for _ in range(3):  # idle redraws, as the one-second ticker does
                await app.tick()
                s.draw()
                assert s.emulated() == s.expected(), f"idle redraw after {step}"
    finally:
        s.close()


async def test_the_basic_screen_positions_absolutely_and_repaints_on_a_screen_change(app):  # noqa: F811
    s = Session(app)
    try:
        s.draw()
        first = s.out.getvalue()
        assert "\x1b[2J" in first, "the first frame starts on a clean screen"
        s.emulated()
        app.run_action("about")
        await settle(app)
        s.draw()
        frame = s.out.getvalue()
        assert "\x1b[2J" in frame, "a new screen is a full repaint"
        assert not re.search(r"\x1b\[\d*[AB]", frame), "no relative moves up or down"
    finally:
        s.close()
