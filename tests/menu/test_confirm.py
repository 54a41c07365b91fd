"""Questions and confirmed actions (red team on issue 19): Esc on "keep this setting?" does
nothing, "Decide later" holds for that change, a question is never replaced by another while
the admin answers it, and a double Enter on a confirmed action runs it once."""

from __future__ import annotations

import json

from satbridge.core import firewall as fw
from tests.menu.test_app import app, focused, press, screen, settle  # noqa: F401 - the fixture


def audit(menu) -> list[str]:
    path = menu.bridge.config.paths.audit_log
    if not path.exists():
        return []
    return [json.loads(line)["event"] for line in path.read_text().splitlines() if line.strip()]


async def dhcp_to_static(menu) -> None:
    menu.run_action("network")
    await settle(menu)
    form = menu.controller.form
    form.edits["address"].set_edit_text("192.0.2.10/24")
    form.edits["gateway"].set_edit_text("192.0.2.1")
    menu.controller.apply_static()
    await settle(menu)
    assert "KEEP THIS SETTING?" in screen(menu)


async def test_esc_on_keep_does_nothing_and_decide_later_holds(app):  # noqa: F811
    await dhcp_to_static(app)
    press(app, "esc")
    await settle(app)
    assert "KEEP THIS SETTING?" not in screen(app)
    assert "network-confirmed" not in audit(app), "Esc kept the change"
    assert app.bridge.network.pending() is not None, "the change still reverts by itself"
    for _ in range(3):
        await app.tick()
        assert "KEEP THIS SETTING?" not in screen(app), "'Decide later' lasted under a second"
    # Esc on the screen: the leave question stays up over the ticks
    press(app, "esc")
    assert "a change awaits confirmation" in screen(app)
    for _ in range(3):
        await app.tick()
        assert "a change awaits confirmation" in screen(app), "the leave question was replaced"
    press(app, "right", "enter")  # "Leave; it reverts"
    await settle(app)
    assert "satbridge - menu" in screen(app)
    assert "network-confirmed" not in audit(app)


async def test_decide_later_button_then_stay_brings_the_question_back(app):  # noqa: F811
    await dhcp_to_static(app)
    press(app, "right", "enter")  # Decide later
    await app.tick()
    assert "KEEP THIS SETTING?" not in screen(app)
    press(app, "esc")
    press(app, "enter")  # Stay and decide
    await app.tick()
    assert "KEEP THIS SETTING?" in screen(app)
    assert focused(app) == ["Keep this setting"]


async def test_double_enter_on_keep_keeps_once_without_an_error(app):  # noqa: F811
    await dhcp_to_static(app)
    press(app, "enter", "enter")
    await settle(app)
    await app.tick()
    assert audit(app).count("network-confirmed") == 1
    assert "Error" not in screen(app)


RULES = fw.from_json(
    {
        "rules": [{"family": "v4", "protocol": "tcp", "ports": ["22"], "sources": ["10.0.0.0/8"], "action": "accept"}],
        "default_action": "drop",
    }
)


async def test_double_enter_on_firewall_reset_resets_once(app):  # noqa: F811
    await app.bridge.firewall.set(RULES, by="test")
    app.run_action("firewall")
    await settle(app)
    press(app, "tab", "enter")
    assert "reset the firewall?" in screen(app)
    press(app, "right", "enter", "enter")
    await settle(app)
    assert audit(app).count("firewall-reset") == 1, audit(app)
    assert "Firewall reset" in screen(app)


async def test_a_second_firewall_reset_changes_nothing_and_says_so(app):  # noqa: F811
    await app.bridge.firewall.set(RULES, by="test")
    first = await app.bridge.firewall.reset(by="console")
    second = await app.bridge.firewall.reset(by="console")
    assert not first.unchanged
    assert second.unchanged
    assert second.revision == first.revision
    assert audit(app).count("firewall-reset") == 1


async def test_double_enter_on_disconnect_disconnects_once(app, monkeypatch):  # noqa: F811
    from satbridge.core.status import PairingStatus
    from satbridge.services.disconnect import Disconnected

    paired = PairingStatus(
        paired=True, peer_name="central-1", peer_fingerprint="ab" * 32, paired_at=1.0, window_open=False
    )
    monkeypatch.setattr(app.bridge.pairing, "status", lambda: paired)
    calls = []

    async def disconnect(*, by):
        calls.append(by)
        return Disconnected(was_paired=len(calls) == 1, xcc_stopped=False, problem="")

    monkeypatch.setattr(app.bridge.disconnect, "disconnect", disconnect)
    app.run_action("disconnect")
    await settle(app)
    assert "disconnect?" in screen(app)
    press(app, "right", "enter", "enter")
    await settle(app)
    assert len(calls) == 1
    assert "Disconnected." in screen(app)
