"""Bus.subscribe on a private dbus-daemon: a signal counts only from the name's current owner.

NetworkManager's name stands in for any well-known name here: the NM adapter itself waits by
reading properties and consumes no signal today, so the check is proven where it lives.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import NameFlag
from dbus_next.message import Message

from satbridge.system.dbus import Bus
from tests.lab.fake_systemd import forge_signal

NM = "org.freedesktop.NetworkManager"
NM_PATH = "/org/freedesktop/NetworkManager"


@pytest.fixture
async def bus(bus_address: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(bus_address)
    try:
        yield bus
    finally:
        await bus.close()


@contextlib.asynccontextmanager
async def connection(address: str, owns: str = "", flags: NameFlag = NameFlag.NONE) -> AsyncIterator[MessageBus]:
    conn = await MessageBus(bus_address=address).connect()
    try:
        if owns:
            await conn.request_name(owns, flags)
        yield conn
    finally:
        conn.disconnect()
        with contextlib.suppress(Exception):
            await conn.wait_for_disconnect()


async def emit(conn: MessageBus, state: int) -> None:
    """StateChanged(state) from `conn`, routed by the daemon when this returns."""
    conn.send(Message.new_signal(NM_PATH, NM, "StateChanged", "u", [state]))
    await conn.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus", member="GetId"))


async def owned_by(bus: Bus, owner: str | None) -> None:
    for _ in range(300):
        if bus.owner(NM) == owner:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{NM} still owned by {bus.owner(NM)}, not {owner}")


async def subscribe(bus: Bus) -> list[int]:
    got: list[int] = []
    await bus.subscribe(NM, NM, "StateChanged", lambda _path, body: got.append(int(body[0])), path=NM_PATH)
    return got


async def settled(got: list[int], last: int) -> list[int]:
    for _ in range(300):
        if got and got[-1] == last:
            return got
        await asyncio.sleep(0.01)
    raise AssertionError(f"the owner's StateChanged({last}) never arrived: {got}")


async def test_a_forged_networkmanager_signal_is_ignored(bus, bus_address):
    async with connection(bus_address, NM) as nm:
        got = await subscribe(bus)
        await forge_signal(bus_address, bus.unique_name, NM_PATH, NM, "StateChanged", "u", [20])
        await emit(nm, 70)
        assert await settled(got, 70) == [70]


async def test_a_replaced_owner_is_followed(bus, bus_address):
    async with connection(bus_address, NM, NameFlag.ALLOW_REPLACEMENT) as old:
        got = await subscribe(bus)
        await emit(old, 10)
        await settled(got, 10)
        async with connection(bus_address, NM, NameFlag.REPLACE_EXISTING) as new:
            await owned_by(bus, new.unique_name)
            await emit(old, 20)  # still connected, no longer the owner
            await emit(new, 30)
            assert await settled(got, 30) == [10, 30]


async def test_no_owner_no_trust(bus, bus_address):
    async with connection(bus_address, NM) as nm:
        got = await subscribe(bus)
        await nm.release_name(NM)
        await owned_by(bus, None)
        await emit(nm, 20)  # the former owner
        await forge_signal(bus_address, bus.unique_name, NM_PATH, NM, "StateChanged", "u", [40])
        async with connection(bus_address, NM) as again:
            await owned_by(bus, again.unique_name)
            await emit(again, 70)
            assert await settled(got, 70) == [70]


async def test_the_owner_is_known_before_the_first_signal(bus, bus_address):
    async with connection(bus_address, NM) as nm:
        await subscribe(bus)
        assert bus.owner(NM) == nm.unique_name
        assert await bus.name_owner(NM) == nm.unique_name
        assert await bus.name_owner("org.example.Nobody") is None
