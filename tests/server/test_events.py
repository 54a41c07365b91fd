"""System.WatchEvents over real gRPC and mutual TLS, in-process bridges (sandbox mode; the XCC
tests use the fake systemd on a private bus, which sends PropertiesChanged as systemd does)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from satbridge import wiring
from satbridge.api.v1 import firewall_pb2, system_pb2
from satbridge.client.inventory import Inventory
from satbridge.client.session import SatelliteClient, connect, pair
from satbridge.core import events as ev
from satbridge.core.status import DiskUsage
from satbridge.errors import PermissionDenied, ResourceExhausted, Unauthenticated, Unavailable
from satbridge.services.events import EventBus, resource_feed
from tests.conftest import loopback_config, pair_with, serve_bridge
from tests.fakes import FakeHost
from tests.server.test_xcc import install

WAIT = 10.0  # seconds an event may take here (the audit feed looks every 0.2 s)


def _rules(port: int) -> firewall_pb2.FirewallRuleSet:
    return firewall_pb2.FirewallRuleSet(
        rules=[
            firewall_pb2.FirewallRule(
                family=firewall_pb2.BOTH,
                protocol=firewall_pb2.TCP,
                action=firewall_pb2.ACCEPT,
                ports=[firewall_pb2.PortRange(first=port)],
            )
        ],
        default_action=firewall_pb2.REJECT,
    )


class Watch:
    """One WatchEvents stream read by a task into a queue."""

    def __init__(self, client: SatelliteClient, since: int = 0, run: str = "") -> None:
        self.queue: asyncio.Queue[system_pb2.Event | BaseException] = asyncio.Queue()
        self.stream: AsyncIterator[system_pb2.Event] = client.watch_events(since, run)
        self.task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        try:
            async for event in self.stream:
                await self.queue.put(event)
        except Exception as exc:
            await self.queue.put(exc)

    async def next(self, timeout: float = WAIT) -> system_pb2.Event:
        item = await asyncio.wait_for(self.queue.get(), timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    async def until(self, kind: str, timeout: float = WAIT) -> system_pb2.Event:
        """Skip to the next event of `kind`."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next()
                if event.WhichOneof("kind") == kind:
                    return event

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_firewall_set_confirm_and_rollback_arrive(running, inventory):
    sat = await pair_with(running, inventory)
    async with connect(sat, inventory) as client:
        watch = Watch(client)
        try:
            hello = await watch.next()
            assert hello.HasField("subscribed")
            assert hello.run == running.bridge.events.run
            await client.firewall_call("Set", firewall_pb2.SetFirewallRequest(rules=_rules(8443)))
            first = await watch.until("firewall")
            assert first.firewall.action == system_pb2.FirewallChanged.SET
            assert first.firewall.revision == 1
            assert first.seq > hello.subscribed.newest_seq
            assert first.state_generation == running.bridge.state.current()[1]
            await client.firewall_call(
                "Set", firewall_pb2.SetFirewallRequest(rules=_rules(8444), confirm_timeout_seconds=1)
            )
            pending = await watch.until("firewall")
            assert (pending.firewall.action, pending.firewall.revision) == (system_pb2.FirewallChanged.SET, 2)
            rolled = await watch.until("firewall")  # the commit-confirm timer fires after 1 s
            assert rolled.firewall.action == system_pb2.FirewallChanged.ROLLED_BACK
            assert rolled.firewall.revision == 2
            assert rolled.firewall.reason == "not confirmed in time"
            assert rolled.seq > pending.seq > first.seq
        finally:
            await watch.close()


async def test_cut_and_resume_sees_every_event_once_in_order(running, inventory):
    sat = await pair_with(running, inventory)
    async with connect(sat, inventory) as client:
        watch = Watch(client)
        hello = await watch.next()
        await client.firewall_call("Set", firewall_pb2.SetFirewallRequest(rules=_rules(8001)))
        last = await watch.until("firewall")
        await watch.close()  # the cut
        for port in range(8002, 8007):
            await client.firewall_call("Set", firewall_pb2.SetFirewallRequest(rules=_rules(port)))
        await asyncio.sleep(0.6)  # the audit feed has seen them all
        resumed = Watch(client, last.seq, hello.run)
        try:
            assert (await resumed.next()).HasField("subscribed")
            seqs, revisions = [], []
            while len(revisions) < 5:
                event = await resumed.next()
                assert not event.HasField("lost")
                seqs.append(event.seq)
                if event.HasField("firewall"):
                    revisions.append(event.firewall.revision)
            assert seqs == list(range(last.seq + 1, last.seq + 1 + len(seqs)))
            assert revisions == [2, 3, 4, 5, 6]
        finally:
            await resumed.close()


async def test_since_out_of_the_ring_and_from_another_run(running, inventory):
    sat = await pair_with(running, inventory)
    bus = running.bridge.events
    await asyncio.sleep(0.5)  # the pairing's own events are in (audit feed) before the ring is swapped
    bus.ring = ev.Ring(3)
    for i in range(6):
        bus.publish(ev.NetworkChanged("CHANGED", f"test {i}"))
    async with connect(sat, inventory) as client:
        for since, run, reason in ((1, bus.run, "OUT_OF_RING"), (2, "another-run", "OTHER_RUN")):
            watch = Watch(client, since, run)
            try:
                assert (await watch.next()).HasField("subscribed")
                lost = await watch.next()
                assert lost.seq == 0
                assert system_pb2.EventsLost.Reason.Name(lost.lost.reason) == reason
                assert lost.lost.first_available_seq == 4
                assert [(await watch.next()).seq for _ in range(3)] == [4, 5, 6]
            finally:
                await watch.close()


async def test_unpair_ends_the_stream_unauthenticated(running, inventory):
    sat = await pair_with(running, inventory)
    async with connect(sat, inventory) as client:
        watch = Watch(client)
        try:
            await watch.next()
            await running.bridge.disconnect.disconnect(by="console")
            with pytest.raises(Unauthenticated):
                await watch.until("no such kind", timeout=3)
        finally:
            await watch.close()


async def test_subscriber_cap(running, inventory):
    sat = await pair_with(running, inventory)
    running.bridge.events.max_subscribers = 2
    async with connect(sat, inventory) as client:
        watches = [Watch(client), Watch(client)]
        try:
            for watch in watches:
                await watch.next()
            third = Watch(client)
            with pytest.raises(ResourceExhausted, match="subscribers"):
                await third.next()
            await third.close()
            await watches[0].close()
            await asyncio.sleep(0.2)
            fourth = Watch(client)  # a closed stream gives its place back
            assert (await fourth.next()).HasField("subscribed")
            await fourth.close()
        finally:
            for watch in watches:
                await watch.close()


async def test_bridge_stop_sends_stopping_then_unavailable(root, inventory):
    async with serve_bridge(loopback_config(root)) as run:
        sat = await pair_with(run, inventory)
        async with connect(sat, inventory) as client:
            watch = Watch(client, 0, run.bridge.events.run)  # from the start of the run
            try:
                await watch.next()
                started = await watch.until("bridge")
                assert started.bridge.action == system_pb2.BridgeLifecycle.STARTED
                assert started.seq == 1
                stop = asyncio.ensure_future(run.server.stop(2.0))
                stopping = await watch.until("bridge")
                assert stopping.bridge.action == system_pb2.BridgeLifecycle.STOPPING
                with pytest.raises(Unavailable):
                    await watch.next()
                await stop
            finally:
                await watch.close()


async def test_xcc_state_changes_from_properties_changed(root, inventory, fake_systemd):
    install(root)
    async with serve_bridge(replace(loopback_config(root), dbus_address=fake_systemd.address)) as run:
        sat = await pair_with(run, inventory)
        async with connect(sat, inventory) as client:
            watch = Watch(client)
            try:
                await watch.next()
                await asyncio.sleep(0.5)  # the feed subscribed meanwhile
                await client.xcc_control("start")
                event = await watch.until("xcc")
                while event.xcc.main_pid != 4242:
                    event = await watch.until("xcc")
                assert (event.xcc.active_state, event.xcc.sub_state) == ("active", "running")
                await client.xcc_control("stop")
                event = await watch.until("xcc")
                # systemd sends the Unit's and the Service's properties in two signals: two events
                while (event.xcc.active_state, event.xcc.main_pid) != ("inactive", 0):
                    event = await watch.until("xcc")
                assert event.xcc.sub_state == "dead"
            finally:
                await watch.close()


async def test_a_slow_subscriber_is_told_it_lost_events():
    """The bus holds no queue per subscriber: one that reads too slowly falls off the ring's end
    and gets TOO_SLOW with where it goes on, and memory stays the ring's."""
    bus = EventBus(lambda: 0.0, ring_size=8)
    slow = bus.subscribe(0, bus.run)
    for i in range(20):
        bus.publish(ev.InstallProgress("COPYING", percent=i))
    items = await slow.read(0.1)
    assert items[0] == ev.Lost("TOO_SLOW", 13)
    assert [i.seq for i in items[1:] if isinstance(i, ev.Event)] == list(range(13, 21))
    assert await slow.read(0.05) == []
    slow.close()
    assert not bus.subscribers


async def test_publish_from_another_thread():
    bus = EventBus(lambda: 0.0)
    bus.attach(asyncio.get_running_loop())
    sub = bus.subscribe()
    await asyncio.to_thread(bus.publish, ev.PairingChanged("ATTEMPT_FAILED", source="192.0.2.7"))
    (item,) = await sub.read(2.0)
    assert isinstance(item, ev.Event)
    assert item.payload == ev.PairingChanged("ATTEMPT_FAILED", source="192.0.2.7")


async def test_factory_reset_ends_the_stream_unauthenticated(running, inventory):
    sat = await pair_with(running, inventory)
    async with connect(sat, inventory) as client:
        watch = Watch(client)
        try:
            await watch.next()
            async for _ in running.bridge.factory_reset.run(by="console"):
                pass
            reset = await watch.until("factory_reset")
            assert reset.factory_reset.by == "console"
            with pytest.raises(Unauthenticated):
                await watch.next()
        finally:
            await watch.close()


async def test_a_failed_pairing_attempt_arrives(running, inventory, tmp_path):
    sat = await pair_with(running, inventory)
    async with connect(sat, inventory) as client:
        watch = Watch(client)
        try:
            await watch.next()
            running.bridge.pairing.open_window()
            opened = await watch.until("pairing")
            assert opened.pairing.action == system_pb2.PairingChanged.WINDOW_OPENED
            other = Inventory.load(tmp_path / "other")
            with pytest.raises(PermissionDenied):
                await pair(
                    "127.0.0.1",
                    "0000-0000-0000-0000",
                    inventory=other,
                    server_name="mallory",
                    port=running.bound.management,
                    pairing_port=running.bound.pairing,
                )
            failed = await watch.until("pairing")
            assert failed.pairing.action == system_pb2.PairingChanged.ATTEMPT_FAILED
            assert failed.pairing.source == "ipv4:127.0.0.1"  # as the audit log names it
            assert failed.pairing.peer_name == "mallory"
            assert failed.pairing.attempts_left > 0
        finally:
            await watch.close()


async def test_the_xcc_feed_watches_again_after_its_bus_connection_broke(root, inventory, fake_systemd, monkeypatch):
    monkeypatch.setattr(wiring, "WATCH_CHECK_SECONDS", 0.1)
    install(root)
    async with serve_bridge(replace(loopback_config(root), dbus_address=fake_systemd.address)) as run:
        sat = await pair_with(run, inventory)
        async with connect(sat, inventory) as client:
            watch = Watch(client)
            try:
                await watch.next()
                await asyncio.sleep(0.3)
                await run.bridge.units.close()  # as when the bus daemon went away
                await asyncio.sleep(0.5)  # noticed, and subscribed again on a new connection
                await client.xcc_control("start")
                event = await watch.until("xcc")
                while event.xcc.main_pid != 4242:
                    event = await watch.until("xcc")
            finally:
                await watch.close()


async def test_disk_and_memory_low_and_back():
    class Host(FakeHost):
        free = 40

        def disk(self) -> DiskUsage:
            return DiskUsage("/var/lib/satbridge", 1000, self.free)

    host = Host()
    bus = EventBus(lambda: 0.0)
    sub = bus.subscribe(0, bus.run)
    feed = asyncio.ensure_future(resource_feed(bus, host, every=0.01))
    try:
        (low,) = await sub.read(2.0)
        assert isinstance(low, ev.Event)
        assert low.payload == ev.ResourceLow("DISK", True, 40, 1000)
        host.free = 70  # under OK_ABOVE: still low, no event
        await asyncio.sleep(0.1)
        assert await sub.read(0.01) == []
        host.free = 200
        (back,) = await sub.read(2.0)
        assert isinstance(back, ev.Event)
        assert back.payload == ev.ResourceLow("DISK", False, 200, 1000)
    finally:
        feed.cancel()
        await asyncio.gather(feed, return_exceptions=True)


async def test_a_stream_that_fell_off_the_ring_past_its_unpair_gets_nothing_after_it(running, inventory):
    """Red team 22: a subscriber stalled (TCP window full) while the satellite was unpaired and
    more than a ring of events went by never sees the UNPAIRED event (it fell off the ring); it
    got TOO_SLOW and then up to 256 events of after the unpair (a new pairing's too) before the
    trust check between batches ended it. The check comes before every event now."""
    from satbridge.server.servicers import SystemServicer

    sat = await pair_with(running, inventory)
    bridge = running.bridge
    await asyncio.sleep(0.6)  # the pairing's own events are out
    bridge.events.ring = ev.Ring(8)

    class Context:
        def auth_context(self) -> dict[str, list[bytes]]:
            return {"x509_pem_cert": [sat.cert_pem.encode()]}

    stream = SystemServicer(bridge).WatchEvents(system_pb2.WatchEventsRequest(), Context())  # type: ignore[arg-type]
    assert (await anext(stream)).HasField("subscribed")
    bridge.events.publish(ev.NetworkChanged("CHANGED", "while paired"))
    # the stream is stalled here (its client reads nothing); meanwhile it is unpaired
    await bridge.disconnect.disconnect(by="console")
    await asyncio.sleep(1.0)  # the audit feed publishes UNPAIRED
    for i in range(20):
        bridge.events.publish(ev.NetworkChanged("CHANGED", f"after unpair {i}"))
    seen: list[system_pb2.Event] = []

    async def drain() -> None:
        async for event in stream:
            seen.append(event)

    with pytest.raises(Unauthenticated):
        await drain()
    assert not [e for e in seen if e.HasField("network") and e.network.what.startswith("after")]


async def test_a_forged_xcc_properties_changed_is_no_event(root, inventory, fake_systemd):
    """Red team 22: another process on the bus sends a PropertiesChanged for xcc.service that
    looks like systemd's (straight to the bridge and broadcast): no event. Only the owner of
    org.freedesktop.systemd1 counts."""
    from dbus_next.signature import Variant

    from satbridge.core.units import XCC_UNIT
    from satbridge.system.systemd import unit_path
    from tests.lab.fake_systemd import forge_signal

    install(root)
    async with serve_bridge(replace(loopback_config(root), dbus_address=fake_systemd.address)) as run:
        sat = await pair_with(run, inventory)
        async with connect(sat, inventory) as client:
            watch = Watch(client)
            try:
                await watch.next()
                await asyncio.sleep(0.5)  # the feed subscribed meanwhile
                bus = await run.bridge.units.bus()
                await forge_signal(
                    fake_systemd.address,
                    bus.unique_name,
                    unit_path(XCC_UNIT),
                    "org.freedesktop.DBus.Properties",
                    "PropertiesChanged",
                    "sa{sv}as",
                    [
                        "org.freedesktop.systemd1.Unit",
                        {"ActiveState": Variant("s", "failed"), "SubState": Variant("s", "forged")},
                        [],
                    ],
                )
                await client.xcc_control("start")  # a real change after the forged one
                event = await watch.until("xcc")
                while event.xcc.main_pid != 4242:
                    assert event.xcc.sub_state != "forged"
                    event = await watch.until("xcc")
                assert event.xcc.sub_state != "forged"
            finally:
                await watch.close()
