"""WatchEvents against a REAL NetworkManager (tests/lab/nm.py): the console (the satbridge CLI,
another process) changes the network; a subscriber of the bridge sees the change, the confirm,
and NetworkManager's own rollback of an unconfirmed change when it happens (NM's
PropertiesChanged of its Checkpoints makes the bridge look at once)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from dataclasses import replace

import pytest

from satbridge.api.v1 import system_pb2
from satbridge.client.session import connect
from satbridge.server.app import BridgeServer
from satbridge.services.network import NetworkService
from satbridge.system.networkmanager import NmNetwork
from satbridge.wiring import wire
from tests.conftest import Running, loopback_config, pair_with
from tests.fakes import FakeClock
from tests.lab.nm import nm_lab
from tests.server.test_events import Watch

pytestmark = pytest.mark.lab

CHANGED, CONFIRMED, REVERTED = (
    system_pb2.NetworkChanged.CHANGED,
    system_pb2.NetworkChanged.CONFIRMED,
    system_pb2.NetworkChanged.REVERTED,
)


@pytest.fixture(scope="module")
def lab():
    with nm_lab(f"ev{os.getpid() % 10000}") as running:
        yield running


async def console(root, lab, *args: str) -> str:
    """`satbridge --root ROOT network ...` as the console runs it (NetworkManager on the lab's bus)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "satbridge",
        "--root",
        str(root),
        "network",
        *args,
        env={**os.environ, "SATBRIDGE_DBUS_ADDRESS": lab.bus_address},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_confirmed_and_reverted_network_changes_arrive(lab, root, inventory):
    # The bridge in-process: sandbox firewall (this machine's is never touched), the lab's NM.
    bridge = wire(replace(loopback_config(root), dbus_address=lab.bus_address), clock=FakeClock(time.time()))
    nm = NmNetwork(lab.bus_address)
    old = bridge.network
    bridge = dataclasses.replace(
        bridge, network=NetworkService(nm, old.store, old.locks, old.audit, old.state, time.time), network_backend=nm
    )
    server = BridgeServer(bridge, guard_memory=False)
    run = Running(bridge, server, await server.start(), FakeClock(time.time()))
    try:
        sat = await pair_with(run, inventory)
        async with connect(sat, inventory) as client:
            watch = Watch(client)
            try:
                await watch.next()
                await console(root, lab, "static", "--address", "198.51.100.61/24", "--confirm-timeout", "5")
                pending = await watch.until("network")
                assert (pending.network.action, pending.network.what) == (CHANGED, "static 198.51.100.61/24")
                await console(root, lab, "confirm")
                confirmed = await watch.until("network")
                assert (confirmed.network.action, confirmed.network.what) == (CONFIRMED, "static 198.51.100.61/24")
                assert confirmed.seq > pending.seq

                await console(root, lab, "static", "--address", "198.51.100.62/24", "--confirm-timeout", "3")
                changed_at = time.monotonic()
                pending = await watch.until("network")
                assert pending.network.action == CHANGED
                # Nobody confirms: NetworkManager rolls back at its deadline, and nobody reads the
                # status either; the event comes from NM's signal.
                reverted = await watch.until("network", timeout=15)
                took = time.monotonic() - changed_at
                assert (reverted.network.action, reverted.network.what) == (REVERTED, "static 198.51.100.62/24")
                assert reverted.network.reason == "not confirmed in time"
                for _ in range(50):  # NM's rollback is recorded once its checkpoint is gone; the
                    if lab.kernel_v4() == ["198.51.100.61/24"]:  # kernel address follows shortly
                        break
                    await asyncio.sleep(0.1)
                assert lab.kernel_v4() == ["198.51.100.61/24"]
                print(f"rolled back by NM; the event came {took:.1f} s after the 3 s change")
                assert took < 3 + 3
            finally:
                await watch.close()
    finally:
        await server.stop(0)
        await bridge.aclose()
