"""The menu without a terminal: screens rendered at 80x24, actions run by name."""

from __future__ import annotations

import asyncio

import pytest

from satbridge.menu.app import MenuApp
from satbridge.menu.views import render_text
from satbridge.wiring import wire
from tests.conftest import loopback_config


@pytest.fixture
async def app(tmp_path):
    bridge = wire(loopback_config(tmp_path / "root"))
    menu = MenuApp(bridge)
    try:
        yield menu
    finally:
        for task in list(menu.tasks):
            task.cancel()
        await bridge.aclose()


async def settle(app: MenuApp) -> None:
    for _ in range(50):
        if not app.tasks:
            return
        await asyncio.sleep(0.02)


async def test_main_menu_fits_80x24(app):
    screen = render_text(app.top)
    assert len(screen.splitlines()) == 24
    for item in (
        "Status",
        "Commission / connect",
        "Network",
        "XCC service",
        "Firewall",
        "Logs",
        "Disconnect from server",
        "Factory reset",
        "About",
        "Help",
        "Quit",
    ):
        assert item in screen
    assert all(ord(ch) < 128 for ch in screen), "plain ASCII for a serial console"


async def test_status_and_help_by_name(app):
    app.status()
    await settle(app)
    assert "Paired:          no" in render_text(app.top)
    app.run_action("help")
    assert "log viewer: search for a text" in render_text(app.top)
    app.run_action("back")
    assert "Commission / connect" in render_text(app.top)


@pytest.mark.parametrize(
    ("action", "title"),
    [
        ("status", "status"),
        ("commission", "commission / connect"),
        ("network", "network"),
        ("xcc", "XCC service"),
        ("firewall", "firewall"),
        ("logs", "logs"),
        ("factory-reset", "factory reset"),
        ("about", "about"),
        ("help", "help"),
        ("disconnect", "confirm"),
    ],
)
async def test_every_screen_is_a_named_action(app, action, title):
    app.run_action(action)
    await settle(app)
    assert f"satbridge - {title}" in render_text(app.top)


async def test_commission_shows_the_code_and_then_the_pairing(app):
    app.commission()
    await settle(app)
    screen = render_text(app.top)
    assert "Code:" in screen
    assert "5 attempts" in screen


async def test_network_form_shows_inline_errors(app):
    app.network()
    await settle(app)
    app.network_form.edits["address"].set_edit_text("192.0.2.0/24")
    body = app.body.original_widget.body
    apply = next(w for w in body.body if "Apply static" in render_text(w, 80, None))
    apply.original_widget.keypress((80,), "enter")
    await settle(app)
    assert "! 192.0.2.0 is the network address of 192.0.2.0/24" in render_text(app.top)
    app.network_form.edits["address"].set_edit_text("192.0.2.10/24")
    app.network_form.edits["gateway"].set_edit_text("192.0.2.1")
    apply.original_widget.keypress((80,), "enter")
    await settle(app)
    screen = render_text(app.top)
    assert "static, 192.0.2.10/24" in screen
    assert "KEEP THIS SETTING?" in screen


async def test_factory_reset_wants_the_word(app):
    app.factory_reset()
    app.reset_edit.set_edit_text("reset")
    body = app.body.original_widget.body
    go = next(w for w in body.body if "Reset the satellite" in render_text(w, 80, None))
    go.original_widget.keypress((80,), "enter")
    assert "Type RESET" in render_text(app.top)
    app.reset_edit.set_edit_text("RESET")
    go.original_widget.keypress((80,), "enter")
    for _ in range(100):
        await asyncio.sleep(0.05)
        if "Factory reset complete" in render_text(app.top):
            break
    screen = render_text(app.top)
    assert "[done] a new identity and a clean state" in screen
