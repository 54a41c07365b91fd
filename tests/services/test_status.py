"""Status under a budget (issue 18, case 2): a hung daemon costs one part, never the answer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

from satbridge.services.status import PART_DEADLINE
from satbridge.wiring import wire
from tests.conftest import loopback_config
from tests.server.test_xcc import install

SATCTL_DEADLINE = 15.0  # satctl's default deadline: the shortest a client we ship waits


def _start_fake_systemd(address: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.lab.fake_systemd", address],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


async def test_a_hung_systemd_costs_only_the_xcc_part(root, bus_address):
    install(root)
    proc = _start_fake_systemd(bus_address)
    try:
        bridge = wire(replace(loopback_config(root), dbus_address=bus_address))
        try:
            assert (await bridge.status.get()).xcc is not None  # it answers while it runs
            os.kill(proc.pid, signal.SIGSTOP)  # now it hangs: every call waits
            began = time.monotonic()
            status = await bridge.status.get()
            took = time.monotonic() - began
        finally:
            os.kill(proc.pid, signal.SIGCONT)
            await bridge.aclose()
    finally:
        proc.kill()
        proc.wait()
    assert took < PART_DEADLINE + 1.5 < SATCTL_DEADLINE, took
    assert status.xcc is None
    assert any(w.startswith("XCC state unavailable: no answer within") for w in status.warnings), status.warnings
    assert status.hostname
    assert status.instance_id
    assert status.network is not None


async def test_parts_appear_as_they_answer(root, bus_address):
    install(root)
    proc = _start_fake_systemd(bus_address)
    try:
        os.kill(proc.pid, signal.SIGSTOP)
        bridge = wire(replace(loopback_config(root), dbus_address=bus_address))
        seen: list[tuple[float, bool, bool]] = []
        began = time.monotonic()
        try:
            async for s in bridge.status.updates():
                seen.append((time.monotonic() - began, s.network is not None, s.xcc is not None))
        finally:
            os.kill(proc.pid, signal.SIGCONT)
            await bridge.aclose()
    finally:
        proc.kill()
        proc.wait()
    first_at, first_network, _ = seen[0]
    assert first_at < 1.0
    assert not first_network
    network_at = next(t for t, net, _ in seen if net)
    assert network_at < 1.0, seen  # the sandbox network does not wait for the hung systemd
    assert not any(x for _, _, x in seen)


class _Slow:
    async def _wait(self) -> None:
        await asyncio.sleep(5)

    status = get = show = _wait


async def test_each_part_has_its_own_deadline(root):
    # Three slow parts, run side by side, cost one deadline, not three.
    bridge = wire(loopback_config(root))
    service = bridge.status
    service.part_deadline = 0.3
    service.xcc = service.firewall = service.network = _Slow()  # type: ignore[assignment]
    began = time.monotonic()
    status = await service.get()
    await bridge.aclose()
    assert time.monotonic() - began < 1.0
    assert sorted(w.split(" unavailable")[0] for w in status.warnings) == [
        "XCC state",
        "firewall state",
        "network state",
    ]


async def test_a_bug_in_any_part_is_a_warning_naming_it(tmp_path, monkeypatch):
    """Red team 18, finding 1: a part that raises anything (KeyError from a state file, a bug)
    becomes a warning that names it; the rest of the status still answers."""
    bridge = wire(loopback_config(tmp_path / "root"))
    try:

        def broken(*args, **kwargs):
            raise KeyError("revision")

        async def broken_async(*args, **kwargs):
            raise OverflowError("timestamp out of range for platform time_t")

        monkeypatch.setattr(bridge.pairing, "status", broken)
        monkeypatch.setattr(bridge.firewall, "get", broken_async)
        status = await bridge.status.get()
    finally:
        await bridge.aclose()
    assert any(w.startswith("pairing state unavailable") and "KeyError" in w for w in status.warnings), status.warnings
    assert any(w.startswith("firewall state unavailable") and "OverflowError" in w for w in status.warnings)
    assert status.hostname
    assert status.instance_id
    assert status.network is not None


async def test_recent_status_is_shared_for_a_bounded_age_and_read_anew_after_a_state_write(root):
    # Pollers share one read (issue 21): its `time` says when it was read, never older than the
    # age allowed; a state file written meanwhile (here the generation) makes the next call read.
    bridge = wire(loopback_config(root))
    service = bridge.status
    reads = 0
    get = service.get

    async def counted():
        nonlocal reads
        reads += 1
        return await get()

    service.get = counted  # type: ignore[method-assign]
    try:
        first, *others = await asyncio.gather(*(service.recent() for _ in range(20)))
        assert reads == 1
        assert all(o is first for o in others)
        assert await service.recent() is first
        with bridge.state.store.lock():
            bridge.state.bump()
        fresh = await service.recent()
        assert reads == 2
        assert fresh.state_generation == first.state_generation + 1
        await asyncio.sleep(0.05)
        again = await service.recent(max_age=0.01)
        assert reads == 3
        assert again.time > fresh.time
        service.forget()
        await service.recent()
        assert reads == 4
    finally:
        await bridge.aclose()
