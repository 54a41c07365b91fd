"""The menu without a terminal: screens rendered at 80x24, actions run by name, keys typed."""

from __future__ import annotations

import asyncio

import pytest

from satbridge.menu.app import MenuApp
from satbridge.menu.term import basic_mode, plain
from satbridge.menu.views import render_attrs, render_text
from satbridge.wiring import wire
from tests.conftest import loopback_config

SIZE = (80, 24)
TOP = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.fixture
async def app(tmp_path):
    bridge = wire(loopback_config(tmp_path / "root"))
    menu = MenuApp(bridge)
    try:
        yield menu
    finally:
        for task in list(menu.tasks):
            task.cancel()
        for controller in menu.stack:
            controller.stop()
        await bridge.aclose()


async def settle(app: MenuApp) -> None:
    for _ in range(100):
        if not app.tasks:
            return
        await asyncio.sleep(0.02)


def press(app: MenuApp, *keys: str) -> None:
    for key in keys:
        if app.top.keypress(SIZE, key) is not None:
            app.keypress(key)


def focused(app: MenuApp) -> list[str]:
    """The texts drawn in reverse video (the focus), one per row, without the button's < >."""
    rows = ["".join(text for attr, text in row if attr == "focus") for row in render_attrs(app.top)]
    return [r.strip().removeprefix("<").removesuffix(">").strip() for r in rows if r.strip()]


def screen(app: MenuApp) -> str:
    return render_text(app.top)


async def test_main_menu_fits_80x24_numbered_with_a_header(app):
    text = screen(app)
    assert len(text.splitlines()) == 24
    for item in ("1  Status", "2  Commission / connect", "3  Network", "7  Disconnect from server", "Quit (F10)"):
        assert item in text
    assert "not paired" in text.splitlines()[0], "the header says where the admin is"
    assert all(ord(ch) < 128 for ch in text), "plain ASCII for a serial console"


async def test_the_focus_is_reverse_video_and_the_menu_remembers_it(app):
    assert len(focused(app)) == 1
    assert "1  Status" in focused(app)[0]
    press(app, "down", "down")
    assert "Network" in focused(app)[0]
    press(app, "enter")
    await settle(app)
    assert "satbridge - network" in screen(app)
    press(app, "esc")
    assert "Network" in focused(app)[0], "Back returns to the item that was chosen"


async def test_number_keys_open_items(app):
    press(app, "5")
    await settle(app)
    assert "satbridge - firewall" in screen(app)


async def test_status_and_help_by_name(app):
    app.run_action("status")
    await settle(app)
    assert "Paired:          no" in screen(app)
    app.run_action("help")
    assert "log viewer: search" in screen(app)
    app.run_action("back")
    app.run_action("back")
    assert "Commission / connect" in screen(app)


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
        ("disconnect", "disconnect"),
    ],
)
async def test_every_screen_is_a_named_action(app, action, title):
    app.run_action(action)
    await settle(app)
    assert f"satbridge - {title}" in screen(app)


async def test_fields_keep_letters_and_tab_moves(app):
    app.run_action("network")
    await settle(app)
    press(app, *"q?")
    form = app.controller.form
    assert form.edits["address"].edit_text == "q?", "letters go into the field, not to Back/Help"
    assert "satbridge - network" in screen(app)
    press(app, "ctrl u")
    assert form.edits["address"].edit_text == ""
    press(app, "tab")
    press(app, *"192.0.2.1")
    assert form.edits["gateway"].edit_text == "192.0.2.1"
    press(app, "shift tab")
    press(app, *"x")
    assert form.edits["address"].edit_text == "x"
    press(app, "enter")
    press(app, "y")
    assert "y" in form.edits["gateway"].edit_text, "Enter in a field moves to the next"


async def test_network_errors_ipv6_and_the_keep_modal(app):
    app.run_action("network")
    await settle(app)
    form = app.controller.form
    form.edits["address"].set_edit_text("2001:db8::5/64")
    app.controller.apply_static()
    await settle(app)
    assert "IPv6" in screen(app)
    form.edits["address"].set_edit_text("")
    app.controller.apply_static()
    await settle(app)
    assert "! enter an address" in screen(app)
    form.edits["address"].set_edit_text("192.0.2.10/24")
    form.edits["gateway"].set_edit_text("192.0.2.1")
    form.edits["search"].set_edit_text("example.org")
    app.controller.apply_static()
    await settle(app)
    text = screen(app)
    assert "KEEP THIS SETTING?" in text
    assert "!" not in text.split("KEEP")[0].split("Address/prefix")[-1], "no stale error"
    assert focused(app) == ["Keep this setting"]
    await app.tick()
    assert "NETWORK CHANGE reverts in" in screen(app).splitlines()[0]
    press(app, "enter")
    await settle(app)
    await app.tick()
    assert "kept" in screen(app).lower()
    # a new screen shows the static setting prefilled
    app.run_action("back")
    app.run_action("network")
    await settle(app)
    form = app.controller.form
    assert form.values() == {
        "address": "192.0.2.10/24",
        "gateway": "192.0.2.1",
        "dns": "",
        "search": "example.org",
    }
    assert app.controller.view.host.values()["hostname"] == "satellite"


async def test_the_setting_in_force_starts_no_countdown(app):
    """Issue 19, finding 10: "Use DHCP" on DHCP, or Apply with the static setting in force."""
    app.run_action("network")
    await settle(app)
    app.controller.dhcp()
    await settle(app)
    await app.tick()
    text = screen(app)
    assert "Network: already in force: nothing to change." in text
    assert "KEEP THIS SETTING?" not in text
    assert "reverts in" not in text.splitlines()[0]
    await app.bridge.network.set_static("192.0.2.10/24", "192.0.2.1", [], confirm_timeout=0)
    app.run_action("back")
    app.run_action("network")
    await settle(app)
    app.controller.apply_static()  # the prefilled form: the setting in force
    await settle(app)
    await app.tick()
    text = screen(app)
    assert "already in force: nothing to change" in text
    assert "KEEP THIS SETTING?" not in text


async def test_disconnect_when_not_paired_says_so(app):
    app.run_action("disconnect")
    await settle(app)
    text = screen(app)
    assert "not paired" in text
    assert "nothing to disconnect" in text
    assert "Disconnected" not in text


async def test_firewall_reset_starts_on_no_and_no_stays(app):
    await app.bridge.firewall.set(
        __import__("satbridge.core.firewall", fromlist=["x"]).from_json(
            {
                "rules": [
                    {
                        "family": "v6",
                        "protocol": "tcp",
                        "ports": ["5060"],
                        "sources": ["2001:db8::/32"],
                        "action": "accept",
                    }
                ],
                "default_action": "drop",
            }
        ),
        by="test",
    )
    app.run_action("firewall")
    await settle(app)
    text = screen(app)
    assert "IPv6" in text
    assert "2001:db8::/32" in text
    assert "Revision 1" in text
    assert "Last change: set by test at" in text
    press(app, "tab", "enter")
    assert "reset the firewall?" in screen(app)
    assert focused(app) == ["No"]
    press(app, "enter")
    assert "satbridge - firewall" in screen(app)
    assert "reset the firewall?" not in screen(app)
    assert (await app.bridge.firewall.get()).rules.rules, "No changed nothing"


async def test_the_firewall_table_cuts_nothing_and_says_who(app):
    """Issue 19, finding 8: a port range, an address and a third source were cut silently,
    and "who set it" showed "-"."""
    rules = __import__("satbridge.core.firewall", fromlist=["x"]).from_json(
        {
            "rules": [
                {
                    "family": "both",
                    "protocol": "udp",
                    "ports": [5060, "10000-20000"],
                    "sources": ["198.51.100.0/24", "2001:db8::/32", "2001:db8:1234:5678::/64"],
                    "action": "accept",
                    "comment": "sip trunk to the carrier",
                },
                {
                    "family": "v6",
                    "protocol": "tcp",
                    "ports": [443],
                    "sources": ["2001:db8:ffff:ffff:ffff:ffff:ffff:0/112"],
                    "action": "accept",
                    "comment": "https",
                },
            ],
            "default_action": "drop",
        }
    )
    state = await app.bridge.firewall.set(rules, by="central-1 (Set RPC)", confirm_timeout=600)
    app.run_action("firewall")
    await settle(app)
    text = render_text(app.top, rows=60)
    table = text.split("Last change:")[1].split("Reset to the factory")[0]
    for whole in ("10000-20000", "198.51.100.0/24", "2001:db8::/32", "2001:db8:1234:5678::/64", "sip trunk to the"):
        assert whole in table, whole
    assert "2001:db8:ffff:ffff:ffff:" in table
    assert "  ffff:ffff:0/112" in table, "a long address wraps, its rest indented"
    assert "set by central-1 (Set RPC) at" in text
    await app.bridge.firewall.confirm(state.pending_revision, by="central-1 (Confirm RPC)")
    await app.controller.load()
    assert "confirmed by central-1 (Confirm RPC) at" in screen(app)


def _tab_walk(app: MenuApp, key: str, count: int) -> list[str]:
    seen = []
    for _ in range(count):
        press(app, key)
        seen.append(" ".join(focused(app)))
    return seen


@pytest.mark.parametrize(
    ("action", "buttons"),
    [
        ("commission", ["New code", "Close the window"]),
        ("xcc", ["Start", "Stop", "Restart"]),
    ],
)
async def test_tab_visits_every_button_in_nested_groups(app, action, buttons):
    """Issue 19, finding 11: buttons in a nested Pile were never reached by Tab."""
    app.run_action(action)
    await settle(app)
    await app.tick()
    if action == "xcc":  # the sandbox has no XCC (nor a system bus): the view draws the verbs
        app.controller.view.show("XCC: running", [(b, lambda: None) for b in buttons])
    assert all(b in screen(app) for b in buttons), screen(app)
    forward = _tab_walk(app, "tab", len(buttons) * 2)
    assert forward == buttons * 2, "in order, wrapping around"
    backward = _tab_walk(app, "shift tab", len(buttons) * 2)
    assert backward == (buttons[::-1] * 3)[1 : 1 + len(buttons) * 2]


async def test_tab_walks_network_fields_and_buttons_in_order(app):
    app.run_action("network")
    await settle(app)
    seen = _tab_walk(app, "tab", 8)
    assert seen == ["", "", "", "", "Apply static address", "Use DHCP", "satellite", "Set hostname"], seen


async def test_commission_while_paired_warns_and_starts_on_no(app, monkeypatch):
    from satbridge.core.status import PairingStatus

    monkeypatch.setattr(app.bridge.pairing, "status", lambda: PairingStatus(True, peer_name="central-1", paired_at=1.0))
    app.run_action("commission")
    await settle(app)
    text = screen(app)
    assert "REPLACES" in text
    assert "central-1" in text
    assert focused(app) == ["No, go back"]
    assert app.bridge.pairing.current_window() is None, "nothing opened before the answer"


async def test_two_consoles_show_one_code_and_leaving_asks(app, tmp_path):
    other = MenuApp(app.bridge)
    app.run_action("commission")
    await settle(app)
    other.run_action("commission")
    await settle(other)
    code = app.bridge.pairing.current_window().code
    assert f"Code:         {code}" in screen(app)
    assert f"Code:         {code}" in screen(other)
    other.controller.new_code()
    await settle(other)
    new = app.bridge.pairing.current_window().code
    await app.tick()
    assert f"Code:         {new}" in screen(app), "the other console's new code shows within a tick"
    press(app, "esc")
    assert "pairing window open" in screen(app)
    assert focused(app) == ["Close the window"]
    press(app, "enter")
    assert app.bridge.pairing.current_window() is None


async def test_factory_reset_names_what_goes_and_wants_the_word(app):
    app.run_action("factory-reset")
    await settle(app)
    text = screen(app)
    for part in ("XCC:", "Pairing:", "Firewall:", "rules", "Network:", "Identity:"):
        assert part in text
    assert focused(app) == ["Back (keep everything)"]
    c = app.controller
    c.edit.set_edit_text("reset")
    c.go()
    assert "Type RESET" in screen(app)
    c.edit.set_edit_text("RESET")
    c.go()
    for _ in range(100):
        await asyncio.sleep(0.05)
        if "Factory reset complete" in screen(app):
            break
    assert "[done] a new identity and a clean state" in screen(app)
    assert all(ord(ch) < 128 for ch in screen(app)), "the bridge's own '...' is spelled in ASCII"


async def test_xcc_not_installed_offers_no_controls(app):
    app.run_action("xcc")
    await settle(app)
    text = screen(app)
    assert "not installed" in text
    assert "Start" not in text


@pytest.mark.parametrize(
    ("env", "basic"),
    [("LANG=C", True), ("LANG=POSIX", True), ("", True), ("LC_CTYPE=C.UTF-8", False), ("LANG=C.UTF-8", False)],
)
def test_basic_mode_sees_the_locale_as_received_not_as_coerced(env, basic):
    import subprocess
    import sys

    code = "from satbridge.menu import term; print(term.basic_mode())"
    command = ["env", "-i", "PATH=/usr/bin:/bin", "TERM=linux", *env.split(), sys.executable, "-c", code]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=TOP).stdout
    assert out.strip() == str(basic)


def test_basic_mode_and_plain():
    assert basic_mode({"TERM": "vt220", "LANG": "C.UTF-8"})
    assert basic_mode({"TERM": "vt100"})
    assert basic_mode({"TERM": "xterm", "LANG": "de_DE.ISO-8859-1"})
    assert basic_mode({"TERM": "xterm", "LANG": "C"})
    assert not basic_mode({"TERM": "xterm", "LANG": "en_US.UTF-8"})
    assert not basic_mode({"TERM": "linux", "LC_ALL": "C.UTF-8"})
    assert plain("id 0123…") == "id 0123..."
    assert plain("caf\u00e9\x1b[2J") == "caf??[2J"


async def test_the_viewer_follows_whole_lines_and_says_when_following_stops(app):
    """A line written in two pieces shows as one line; when the name turns into a FIFO the
    follow stops and the status line says why (it once died silently, still saying "following")."""
    import os

    logdir = app.bridge.config.paths.xcc_log_dir
    logdir.mkdir(parents=True, exist_ok=True)
    path = logdir / "a.log"
    path.write_text("first\n")
    app.viewing = "xcc/a.log"
    app.open("log-viewer")
    await settle(app)
    viewer = app.stack[-1]
    viewer.action("follow")
    await asyncio.sleep(0.3)
    with open(path, "a") as f:
        f.write("partial-")
    await asyncio.sleep(0.5)
    with open(path, "a") as f:
        f.write("line \x1b[2J\n")
    for _ in range(100):
        if "partial-line" in screen(app):
            break
        await asyncio.sleep(0.05)
    assert "partial-line \\x1b[2J" in screen(app)
    path.rename(logdir / "a.log.1")
    os.mkfifo(path)
    for _ in range(100):
        if viewer.following is None:
            break
        await asyncio.sleep(0.05)
    assert viewer.following is None
    assert "follow stopped" in screen(app)


async def _view(app: MenuApp, name: str, data: bytes):  # type: ignore[no-untyped-def]
    logdir = app.bridge.config.paths.xcc_log_dir
    logdir.mkdir(parents=True, exist_ok=True)
    (logdir / name).write_bytes(data)
    app.viewing = f"xcc/{name}"
    app.open("log-viewer")
    await settle(app)
    return app.stack[-1], logdir / name


async def test_the_viewer_numbers_lines_as_grep_does(app):
    """Issue 19, finding 9: splitlines() broke on \\r, \\f, \\v, \\x1c-\\x1e, NEL and U+2028."""
    data = "one\ntwo\rCR\fFF\vVT\x1cFS\x85NEL\u2028LS\nthree ERROR\n".encode()
    viewer, _ = await _view(app, "cr.log", data)
    assert viewer.search("error")
    assert "at line 3" in screen(app)
    assert [viewer.walker[i].number for i in viewer._lines()] == [1, 2, 3]
    assert "two\\x0dCR" in screen(app), "the controls are shown escaped, in their line"


async def test_one_huge_line_shows_its_text_cut_with_a_marker(app):
    viewer, _ = await _view(app, "one.log", b"A" * (10 << 20) + b"\n")
    banner = viewer.walker[0].text
    assert "from line 1 (its start not loaded)" in banner, banner
    lines = [viewer.walker[i] for i in viewer._lines()]
    assert [line.number for line in lines] == [1]
    assert lines[0].raw.startswith("...AAAA")
    assert lines[0].raw.endswith("more characters not shown]")


async def test_following_across_a_truncation_restarts_the_numbering(app):
    viewer, path = await _view(app, "f.log", b"f1\nf2\n")
    viewer.action("follow")
    await asyncio.sleep(0.3)
    path.write_bytes(b"")
    await asyncio.sleep(0.5)
    with open(path, "ab") as f:
        f.write(b"new1\n")
    for _ in range(100):
        if "new1" in screen(app):
            break
        await asyncio.sleep(0.05)
    text = screen(app)
    assert "the file was truncated: numbering starts again" in text
    assert viewer.search("new1")
    assert "found 'new1' at line 1" in screen(app)
    viewer.stop()


async def test_the_header_and_the_network_screen_tell_the_same_truth(app, monkeypatch):
    """Issue 19, finding 12: after `satbridge network hostname sat-new` the header kept the
    machine's hostname, and its addresses were not the Network screen's."""
    await app.bridge.network.set_hostname("sat-new")
    await app.bridge.network.set_static("192.0.2.10/24", None, [], confirm_timeout=0)
    app.run_action("network")
    await settle(app)
    await app.tick()
    head, text = screen(app).splitlines()[0], screen(app)
    assert head.startswith(" sat-new | 192.0.2.10 | "), head
    assert "192.0.2.10/24" in text
    assert "hostname sat-new" in text

    async def unavailable():  # the service cannot answer: the header falls back to the kernel's
        raise __import__("satbridge.errors", fromlist=["x"]).Unavailable("NetworkManager is not running")

    monkeypatch.setattr(app.bridge.network, "show", unavailable)
    await app.tick()
    head = screen(app).splitlines()[0]
    assert head.startswith(f" {app.bridge.status.host.hostname()} | "), head
    assert "not paired" in head
