"""A pending network change is checked against the daemon's real checkpoints (red team 18,
finding 7). The sandbox adapter stands in for NetworkManager: dropping its checkpoint while the
setting stays is what an NM restart does (the lab test does it with a real NM)."""

from __future__ import annotations

import json

import pytest

from satbridge.errors import FailedPrecondition
from satbridge.wiring import wire
from tests.conftest import loopback_config


def _restart_network_manager(state_dir) -> None:
    """The checkpoint dies with the daemon; the unconfirmed setting stays in force."""
    path = state_dir / "sandbox-network.json"
    data = json.loads(path.read_text())
    data["pending"] = None
    path.write_text(json.dumps(data))


@pytest.fixture
async def bridge(tmp_path):
    bridge = wire(loopback_config(tmp_path / "root"))
    try:
        yield bridge
    finally:
        await bridge.aclose()


async def test_a_lost_checkpoint_is_reported_truthfully_and_can_be_reverted(bridge):
    net = bridge.network
    await net.set_static("192.0.2.10/24", "192.0.2.1", [], confirm_timeout=600)
    _restart_network_manager(bridge.config.paths.state_dir)

    state = await net.show()
    assert state.addresses == ("192.0.2.10/24",)
    assert state.pending_rollback_in == 0  # not "reverted in 598 s": nothing will revert it
    assert "NOT rolled back" in state.pending_lost
    assert "revert" in state.pending_lost
    with pytest.raises(FailedPrecondition, match="revert"):
        await net.set_dhcp(confirm_timeout=0)

    state = await net.revert()
    assert state.method == "auto"
    assert not state.pending_lost
    assert not (bridge.config.paths.state_dir / "network-pending.json").exists()
    assert "network-reverted" in bridge.config.paths.audit_log.read_text()
    await net.set_dhcp(confirm_timeout=0)  # changes work again


async def test_a_lost_checkpoint_can_be_kept(bridge):
    net = bridge.network
    await net.set_static("192.0.2.10/24", None, [], confirm_timeout=600)
    _restart_network_manager(bridge.config.paths.state_dir)
    state = await net.confirm()
    assert state.addresses == ("192.0.2.10/24",)
    assert not state.pending_lost
    with pytest.raises(FailedPrecondition, match="no network change"):
        await net.confirm()


async def test_a_change_rolled_back_by_the_daemon_is_not_pending(bridge, monkeypatch):
    net = bridge.network
    await net.set_static("192.0.2.10/24", None, [], confirm_timeout=600)
    path = bridge.config.paths.state_dir / "sandbox-network.json"
    data = json.loads(path.read_text())
    data["current"], data["pending"] = data["pending"]["previous"], None  # NM's timer fired
    path.write_text(json.dumps(data))
    state = await net.show()
    assert state.method == "auto"
    assert not state.pending_lost
    assert state.pending_rollback_in == 0
    await net.set_dhcp(confirm_timeout=0)


async def test_a_dead_checkpoint_from_an_old_file_locks_nothing_out(bridge):
    """network-pending.json naming a checkpoint the daemon does not have (and no previous
    settings): nothing is pending; changes and a factory reset work."""
    path = bridge.config.paths.state_dir / "network-pending.json"
    path.write_text(json.dumps({"checkpoint": "sandbox-checkpoint-1", "deadline": 4e9, "what": "dhcp"}))
    assert (await bridge.network.show()).pending_rollback_in == 0
    await bridge.network.set_dhcp(confirm_timeout=0)
    path.write_text(json.dumps({"checkpoint": "sandbox-checkpoint-1", "deadline": 4e9, "what": "dhcp"}))
    steps = [step async for step in bridge.factory_reset.run(by="test")]
    assert all(step.done for step in steps), [(s.name, s.detail) for s in steps if not s.done]


async def test_a_factory_reset_settles_a_lost_checkpoint(bridge):
    await bridge.network.set_static("192.0.2.10/24", None, [], confirm_timeout=600)
    _restart_network_manager(bridge.config.paths.state_dir)
    steps = [step async for step in bridge.factory_reset.run(by="test")]
    assert all(step.done for step in steps), [(s.name, s.detail) for s in steps if not s.done]
    assert (await bridge.network.show()).method == "auto"


async def test_the_setting_in_force_is_nothing_to_do(bridge):
    """Issue 19, finding 10: DHCP while on DHCP, or the static setting already in force, starts
    no checkpoint (no countdown), audits nothing and says so."""
    net = bridge.network
    audit = bridge.config.paths.audit_log
    pending = bridge.config.paths.state_dir / "network-pending.json"
    before = audit.read_text() if audit.exists() else ""
    state = await net.set_dhcp()
    assert state.note == "already in force: nothing to change"
    assert state.pending_rollback_in == 0
    assert not pending.exists()
    assert net.pending() is None
    assert (audit.read_text() if audit.exists() else "") == before

    await net.set_static("192.0.2.10/24", "192.0.2.1", ["192.0.2.53"], ["example.net"], confirm_timeout=0)
    before = audit.read_text()
    state = await net.set_static("192.0.2.10/24", "192.0.2.1", ["192.0.2.53"], ["example.net"])
    assert state.note == "already in force: nothing to change"
    assert not pending.exists()
    assert audit.read_text() == before
    state = await net.set_static("192.0.2.11/24", "192.0.2.1", ["192.0.2.53"], ["example.net"])
    assert not state.note  # a different address is a change, with its countdown
    assert state.pending_rollback_in > 0
