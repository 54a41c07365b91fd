"""The network service and adapter against a REAL NetworkManager (tests/lab/nm.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import pytest

from satbridge.errors import FailedPrecondition, Unavailable
from satbridge.services.network import NetworkService
from satbridge.services.state import StateService
from satbridge.services.status import PART_DEADLINE
from satbridge.system.dbus import Bus
from satbridge.system.files import DirStore, FileLocks
from satbridge.system.networkmanager import NmNetwork
from satbridge.wiring import wire
from tests.conftest import loopback_config
from tests.fakes import CountingEntropy, ListAudit
from tests.lab.nm import nm_lab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab():
    with nm_lab(f"{os.getpid() % 100000}") as running:
        yield running


@pytest.fixture
async def service(lab, tmp_path):
    adapter = NmNetwork(lab.bus_address)
    store = DirStore(tmp_path / "state")
    svc = NetworkService(
        adapter, store, FileLocks(tmp_path / "state"), ListAudit(), StateService(store, CountingEntropy()), time.time
    )
    try:
        yield svc
    finally:
        await adapter.close()


async def test_static_dhcp_and_back(service, lab):
    state = await service.set_static("198.51.100.10/24", "198.51.100.1", ["198.51.100.53"], confirm_timeout=0)
    assert lab.kernel_v4() == ["198.51.100.10/24"]
    assert (state.method, state.gateway, state.dns) == ("manual", "198.51.100.1", ("198.51.100.53",))
    state = await service.set_dhcp(confirm_timeout=0)
    assert state.method == "auto"
    (leased,) = lab.kernel_v4()
    assert leased.startswith("198.51.100.1")
    assert leased.endswith("/24")
    assert 100 <= int(leased.split("/")[0].rsplit(".", 1)[1]) <= 150, "an address from dnsmasq's range"
    assert state.dhcp["ip_address"] == leased.split("/")[0]
    assert state.dns == ("198.51.100.53",)
    await service.set_static("198.51.100.12/24", "198.51.100.1", [], confirm_timeout=0)
    assert lab.kernel_v4() == ["198.51.100.12/24"]


async def test_unconfirmed_change_is_rolled_back_by_networkmanager(service, lab):
    await service.set_static("198.51.100.20/24", "198.51.100.1", [], confirm_timeout=0)
    state = await service.set_static("198.51.100.21/24", "198.51.100.1", [], confirm_timeout=2)
    assert lab.kernel_v4() == ["198.51.100.21/24"]
    assert 0 < state.pending_rollback_in <= 2
    deadline = time.monotonic() + 6
    while lab.kernel_v4() != ["198.51.100.20/24"]:
        assert time.monotonic() < deadline, f"NM did not roll back: {lab.kernel_v4()}"
        await asyncio.sleep(0.1)
    with pytest.raises(FailedPrecondition):
        await service.confirm()


async def test_confirmed_change_stays(service, lab):
    await service.set_static("198.51.100.30/24", "198.51.100.1", [], confirm_timeout=0)
    await service.set_static("198.51.100.31/24", "198.51.100.1", [], confirm_timeout=2)
    await service.confirm()
    await asyncio.sleep(2.5)
    assert lab.kernel_v4() == ["198.51.100.31/24"]


async def run(*argv: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_confirm_from_another_process(lab, tmp_path):
    """The console applies, the CLI (another process) confirms: the checkpoint is in the state."""
    env = {**os.environ, "SATBRIDGE_DBUS_ADDRESS": lab.bus_address}
    cli = [sys.executable, "-m", "satbridge", "--root", str(tmp_path / "root")]
    code, out, err = await run(
        *cli,
        "network",
        "static",
        "--address",
        "198.51.100.40/24",
        "--gateway",
        "198.51.100.1",
        "--confirm-timeout",
        "3",
        env=env,
    )
    assert code == 0, err
    assert "KEEP THIS SETTING?" in out
    code, out, err = await run(*cli, "network", "confirm", env=env)
    assert code == 0, err
    await asyncio.sleep(3.5)
    assert lab.kernel_v4() == ["198.51.100.40/24"]
    code, out, err = await run(*cli, "network", "static", "--address", "198.51.100.255/24", env=env)
    assert code == 2
    assert "address:" in err
    assert lab.kernel_v4() == ["198.51.100.40/24"], "bad input changes nothing"


async def test_hostname(service, lab):
    state = await service.set_hostname("sat-07")
    assert state.hostname == "sat-07"
    assert lab.written_hostname() == "sat-07"


async def test_missing_networkmanager_is_unavailable(bus_address, tmp_path):
    adapter = NmNetwork(bus_address)  # a bus without NetworkManager on it
    with pytest.raises(Unavailable):
        await adapter.state()
    await adapter.close()
    nowhere = NmNetwork(f"unix:path={tmp_path / 'no-bus'}")
    with pytest.raises(Unavailable):
        await nowhere.state()


async def _pid_of(bus_address: str, name: str) -> int:
    bus = await Bus.connect(bus_address)
    try:
        (pid,) = await bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "GetConnectionUnixProcessID",
            "s",
            [name],
        )
        return int(pid)
    finally:
        await bus.close()


async def test_a_hung_networkmanager_costs_only_the_network_part(service, lab, tmp_path):
    # Issue 18, case 2: with NM stopped by SIGSTOP, status took 30 s (past satctl's 15 s).
    bridge = wire(loopback_config(tmp_path / "root"))
    bridge.status.network = service
    assert (await bridge.status.get()).network is not None
    pid = await _pid_of(lab.bus_address, "org.freedesktop.NetworkManager")
    os.kill(pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        status = await bridge.status.get()
        took = time.monotonic() - began
    finally:
        os.kill(pid, signal.SIGCONT)
        await bridge.aclose()
    print(f"status with NetworkManager hung: {took:.2f} s")
    assert took < PART_DEADLINE + 1.5, took
    assert status.network is None
    assert any(w.startswith("network state unavailable: no answer within") for w in status.warnings)


async def test_the_countdown_is_networkmanagers_when_dhcp_answers_late(service, lab):
    # Issue 18, case 3: a DHCP server answering after 10 s; the checkpoint's timer started at
    # CheckpointCreate, so what is left is less than the confirm timeout, and we say how much.
    await service.set_static("198.51.100.50/24", "198.51.100.1", [], confirm_timeout=0)
    dnsmasq = int((lab.work / "dnsmasq.pid").read_text())
    os.kill(dnsmasq, signal.SIGSTOP)
    loop = asyncio.get_running_loop()
    wake = loop.call_later(10, os.kill, dnsmasq, signal.SIGCONT)
    began = time.monotonic()
    try:
        state = await service.set_dhcp(confirm_timeout=40)
    finally:
        wake.cancel()
        os.kill(dnsmasq, signal.SIGCONT)
    took = time.monotonic() - began
    print(f"DHCP settled after {took:.1f} s; reported rollback in {state.pending_rollback_in:.1f} s")
    assert took > 9
    assert abs(state.settled_in - took) < 1
    assert abs(state.pending_rollback_in - (40 - took)) < 1.5, (state.pending_rollback_in, took)
    # And NetworkManager rolls back when we said it would.
    expected_at = time.monotonic() + state.pending_rollback_in
    while lab.kernel_v4() != ["198.51.100.50/24"]:
        assert time.monotonic() < expected_at + 3, f"NM did not roll back: {lab.kernel_v4()}"
        await asyncio.sleep(0.1)
    assert abs(time.monotonic() - expected_at) < 2.0
