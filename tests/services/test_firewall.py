"""FirewallService over the sandbox backend: revisions, commit-confirm, reset, restore."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from satbridge.core import firewall as fw
from satbridge.errors import Aborted, FailedPrecondition, InvalidArgument
from satbridge.services.firewall import FACTORY_FILE, FirewallService
from satbridge.services.state import StateService
from satbridge.system.files import ConfigDir, DirStore, FileLocks
from satbridge.system.iptables import SandboxFirewall
from tests.fakes import CountingEntropy, ListAudit

OPEN_SIP = fw.RuleSet(
    (fw.Rule(fw.Family.BOTH, fw.Protocol.UDP, fw.Action.ACCEPT, (fw.PortRange(5060, 5060),)),), fw.Action.DROP
)


@pytest.fixture
def parts(tmp_path):
    store = DirStore(tmp_path / "state")
    state = StateService(store, CountingEntropy())
    backend = SandboxFirewall(tmp_path / "kernel.json")
    audit = ListAudit()
    service = FirewallService(
        backend,
        store,
        FileLocks(tmp_path / "state"),
        audit,
        state,
        time.time,
        ConfigDir(tmp_path / "etc"),
        (50051, 50052),
    )
    return service, backend, audit


async def kernel_xcc(backend) -> list[str]:
    return [line for line in (await backend.read())["v4"] if line.startswith("-A SATBRIDGE-XCC")]


async def test_set_without_confirm_is_in_force(parts):
    service, backend, audit = parts
    state = await service.set(OPEN_SIP, by="test")
    assert state.revision == 1
    assert state.pending_revision == 0
    assert await kernel_xcc(backend) == ["-A SATBRIDGE-XCC -p udp -m multiport --dports 5060 -j ACCEPT"]
    assert audit.names() == ["firewall-set"]


async def test_unconfirmed_change_rolls_back(parts):
    service, backend, audit = parts
    started = time.monotonic()
    state = await service.set(OPEN_SIP, by="test", confirm_timeout=1)
    assert state.pending_revision == 1
    assert state.revision == 0
    assert await kernel_xcc(backend)
    while await kernel_xcc(backend) or (await service.get()).pending_revision:
        await asyncio.sleep(0.05)
        assert time.monotonic() - started < 2.0, "rolled back within timeout + 1 s"
    assert "firewall-rolled-back" in audit.names()


async def test_confirmed_change_stays(parts):
    service, backend, _ = parts
    pending = await service.set(OPEN_SIP, by="test", confirm_timeout=1)
    confirmed = await service.confirm(pending.pending_revision, by="test")
    assert confirmed.revision == pending.pending_revision
    await asyncio.sleep(1.3)
    assert await kernel_xcc(backend)
    with pytest.raises(FailedPrecondition):
        await service.confirm(pending.pending_revision, by="test")


async def test_one_pending_change_at_a_time_and_lost_races(parts):
    service, _, _ = parts
    await service.set(OPEN_SIP, by="test", confirm_timeout=60)
    with pytest.raises(FailedPrecondition, match="awaits Confirm"):
        await service.set(OPEN_SIP, by="test")
    await service.confirm(1, by="test")
    with pytest.raises(Aborted):
        await service.set(OPEN_SIP, by="test", base_revision=7)
    assert (await service.set(fw.RuleSet((), fw.Action.REJECT), by="test", base_revision=1)).revision == 2


async def test_bad_input_changes_nothing(parts):
    service, backend, _ = parts
    await service.set(OPEN_SIP, by="test")
    before = await backend.read()
    bad = fw.RuleSet((fw.Rule(fw.Family.V4, fw.Protocol.TCP, fw.Action.ACCEPT, (fw.PortRange(9, 1),)),))
    with pytest.raises(InvalidArgument):
        await service.set(bad, by="test")
    with pytest.raises(InvalidArgument) as exc:
        await service.set(OPEN_SIP, by="test", confirm_timeout=99999)
    assert exc.value.field == "confirm_timeout_seconds"
    assert await backend.read() == before
    assert (await service.get()).revision == 1


async def test_reset_uses_the_factory_file(parts, tmp_path):
    service, backend, _ = parts
    await service.set(OPEN_SIP, by="test")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / FACTORY_FILE).write_text(
        json.dumps({"default_action": "reject", "rules": [{"protocol": "tcp", "action": "accept", "ports": [443]}]})
    )
    state = await service.reset(by="test")
    assert state.rules.default_action is fw.Action.REJECT
    assert await kernel_xcc(backend) == ["-A SATBRIDGE-XCC -p tcp -m multiport --dports 443 -j ACCEPT"]


async def test_restore_at_start_drops_an_unconfirmed_change(parts, tmp_path):
    service, backend, audit = parts
    await service.set(OPEN_SIP, by="test")
    await service.set(fw.RuleSet((), fw.Action.ACCEPT), by="test", confirm_timeout=600)
    # The bridge restarts (a new service object; the old timer is gone with the old process).
    fresh = FirewallService(
        backend,
        service.store,
        service.locks,
        audit,
        service.state,
        time.time,
        ConfigDir(tmp_path / "etc"),
        (50051, 50052),
    )
    await fresh.restore()
    assert await kernel_xcc(backend) == ["-A SATBRIDGE-XCC -p udp -m multiport --dports 5060 -j ACCEPT"]
    assert (await fresh.get()).pending_revision == 0
    service._disarm()


# -- red team of issue 15 ---------------------------------------------------------------------


def _factory_bodies(etc):
    """Each makes the factory file bad in another way; Reset said INTERNAL for several."""
    path = etc / FACTORY_FILE
    yield (
        "5000-digit port",
        lambda: path.write_text('{"rules": [{"protocol": "tcp", "action": "accept", "ports": [' + "9" * 5000 + "]}]}"),
        FACTORY_FILE,
    )
    yield "not UTF-8", lambda: path.write_bytes(b'{"rules": [], "default_action": "\xff"}'), "UTF-8"
    yield "a directory", lambda: path.mkdir(), "directory"
    yield "a FIFO", lambda: os.mkfifo(path), "regular file"
    yield (
        "a bad field",
        lambda: path.write_text('{"rules": [{"protocol": "tcp", "action": "allow"}]}'),
        ("rules[0].action"),
    )
    yield "a key twice", lambda: path.write_text('{"rules": [], "rules": []}'), "twice"
    yield "too big", lambda: path.write_bytes(b" " * (fw.MAX_RULE_FILE + 1)), str(fw.MAX_RULE_FILE)


async def test_a_bad_factory_file_is_failed_precondition_naming_it_and_changes_nothing(parts, tmp_path):
    service, backend, audit = parts
    await service.set(OPEN_SIP, by="test")
    before = await backend.read()
    etc = tmp_path / "etc"
    etc.mkdir()
    for what, make, said in _factory_bodies(etc):
        make()
        with pytest.raises(FailedPrecondition) as exc:
            await asyncio.wait_for(service.reset(by="test"), 10)
        assert FACTORY_FILE in str(exc.value), (what, exc.value)
        assert said in str(exc.value), (what, exc.value)
        assert await backend.read() == before, what
        path = etc / FACTORY_FILE
        path.rmdir() if path.is_dir() else path.unlink()
    assert "firewall-reset" not in audit.names()


async def test_a_no_op_set_keeps_its_revision_and_audits_no_change(parts):
    """Every no-op Set bumped the revision and audited firewall-set/-confirmed, kernel untouched."""
    service, backend, audit = parts
    first = await service.set(OPEN_SIP, by="test")
    kernel = await backend.read()
    spelled_otherwise = fw.RuleSet(
        (fw.Rule(fw.Family.BOTH, fw.Protocol.UDP, fw.Action.ACCEPT, (fw.PortRange(5060, 5060),), ()),),
        fw.Action.DROP,
    )
    for again in (OPEN_SIP, spelled_otherwise):
        state = await service.set(again, by="test", confirm_timeout=30)
        assert (state.revision, state.pending_revision) == (first.revision, 0)
    assert await backend.read() == kernel
    assert audit.names() == ["firewall-set"]
    assert (await service.set(fw.RuleSet((), fw.Action.DROP), by="test")).revision == first.revision + 1


async def test_the_audit_log_says_who_set_confirmed_and_reset(parts):
    """Issue 19, finding 8: the firewall screen's "who set it" comes from these entries."""
    service, _backend, audit = parts
    pending = await service.set(OPEN_SIP, by="central-1 (Set RPC)", confirm_timeout=60)
    await service.confirm(pending.pending_revision, by="central-1 (Confirm RPC)")
    await service.reset(by="console")
    assert [(event, details.get("by")) for event, details in audit.events] == [
        ("firewall-set", "central-1 (Set RPC)"),
        ("firewall-confirmed", "central-1 (Confirm RPC)"),
        ("firewall-reset", "console"),
    ]
