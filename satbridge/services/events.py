"""The event bus behind System.WatchEvents, and the feeds that publish into it.

* `EventBus`: one ring (core.events.Ring) for the whole bridge; a subscriber is a cursor into it,
  so 50 subscribers cost 50 numbers, and a slow one falls off the ring's end and gets a Lost
  instead of growing memory. At most `max_subscribers` at once (ResourceExhausted past it).
* Feeds, run by the server process only:
  - `audit_feed`: the audit log is where every change is recorded, by the bridge service *and*
    by the console (another process): firewall, network, pairing, disconnect, factory reset. Its
    new lines become events as inotify reports the write (a stat() a second behind it).
  - `start_xcc_feed`: systemd's PropertiesChanged on xcc.service (no polling).
  - `start_network_feed`: NetworkManager's PropertiesChanged of its Checkpoints: a checkpoint that
    disappears (NM rolled back, or the console confirmed) makes the network service look at once,
    so a rollback is recorded (audit, then event) when it happens, not at the next reader.
  - `resource_feed`: disk and memory against core.events.LOW_BELOW, every `every` seconds.
  Install progress is published by the Install RPC itself, the bridge's start and stop by the
  server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Protocol

from satbridge.core import events as ev
from satbridge.core.units import XCC_UNIT, UnitState
from satbridge.errors import ResourceExhausted, SatbridgeError, Unauthenticated, Unavailable
from satbridge.services.ports import Clock, HostInfo, Locks
from satbridge.services.state import StateService

log = logging.getLogger(__name__)

TRUST_RECHECK = 0.5
"""Seconds between looks at the trust store while a stream has nothing to send (an unpair from
the console, another process, ends the stream within this)."""

MAX_SUBSCRIBERS = 64
"""WatchEvents streams open at once (the paired server and a few satctl watch)."""

Item = ev.Event | ev.Lost


class EventBus:
    """Publish (from the event loop, or from any thread once `attach()`ed) and subscribe."""

    def __init__(
        self,
        clock: Clock,
        generation: Callable[[], int] = lambda: 0,
        *,
        ring_size: int = ev.DEFAULT_RING,
        max_subscribers: int = MAX_SUBSCRIBERS,
    ) -> None:
        self.clock = clock
        self.generation = generation
        self.run = secrets.token_hex(8)  # this run's id: seq starts at 1 again under a new one
        self.ring = ev.Ring(ring_size)
        self.max_subscribers = max_subscribers
        self.subscribers: set[Subscription] = set()
        self.closed = False
        self._waiters: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop subscribers wait on; publish() from other threads hands over to it."""
        self._loop, self._thread = loop, threading.get_ident()

    def publish(self, payload: ev.Payload) -> None:
        """Add one event and wake the subscribers. Never raises (a failed event must not fail
        the change it reports)."""
        if self._loop is not None and threading.get_ident() != self._thread:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                self._loop.call_soon_threadsafe(self.publish, payload)
            return
        try:
            generation = self.generation()
        except (SatbridgeError, OSError) as exc:
            log.debug("event without a generation: %s", exc)
            generation = 0
        event = self.ring.append(self.clock(), generation, payload)
        log.debug("event %d: %s", event.seq, payload)
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self, timeout: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see audit_feed
                await waiter
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)

    def subscribe(self, since: int = 0, run: str = "") -> Subscription:
        """A cursor after `since` of run `run` (core.events.Ring.start; both unset: from now on).
        ResourceExhausted when max_subscribers are open."""
        if len(self.subscribers) >= self.max_subscribers:
            raise ResourceExhausted(
                f"{self.max_subscribers} event subscribers are open already; close one (or retry later)"
            )
        start, lost = self.ring.start(since, same_run=run in ("", self.run), from_now=not run and not since)
        sub = Subscription(self, start, lost)
        self.subscribers.add(sub)
        return sub

    def close(self) -> None:
        """The bridge stops: every subscription ends (after what it has not read yet)."""
        self.closed = True
        self._wake()


class Subscription:
    """One reader's place in the ring. `read()` hands out what is new; close() when done."""

    def __init__(self, bus: EventBus, next_seq: int, lost: ev.Lost | None) -> None:
        self.bus = bus
        self.next_seq = next_seq
        self._lost = lost

    async def read(self, timeout: float, limit: int = 256) -> list[Item]:
        """The next events (a Lost first when some were missed), waiting up to `timeout` seconds
        for one; [] when none came, or when the bus is closed and all was read."""
        for attempt in range(2):
            items: list[Item] = []
            if self._lost is not None:
                items.append(self._lost)
                self._lost = None
            events, lost, self.next_seq = self.bus.ring.read(self.next_seq, limit)
            if lost is not None:
                items.append(lost)
            items.extend(events)
            if items or attempt or self.bus.closed:
                return items
            await self.bus._wait(timeout)
        return []  # pragma: no cover - the loop always returns

    @property
    def ended(self) -> bool:
        """The bus is closed and this reader has read everything."""
        return self.bus.closed and self.next_seq > self.bus.ring.last_seq and self._lost is None

    async def follow(self, trusted: Callable[[], bool], recheck: float = TRUST_RECHECK) -> AsyncIterator[Item]:
        """What a WatchEvents stream sends after `subscribed`, for as long as it may: each item
        in order while `trusted()` holds (asked before every event, and every `recheck` seconds
        when none come), then only the event that says why the stream ends.

        Raises Unauthenticated after an UNPAIRED or factory-reset event, or once `trusted()`
        fails (a stream stalled while the satellite was unpaired, whose UNPAIRED event fell off
        the ring, gets nothing of after it); Unavailable after the bridge's STOPPING event."""
        while True:
            for item in await self.read(recheck):
                ending = item.payload if isinstance(item, ev.Event) and item.ends_stream else None
                if ending is None and not trusted():
                    continue
                yield item
                if ending is not None and not isinstance(ending, ev.BridgeLifecycle):
                    raise Unauthenticated("the subscription ended: this satellite was unpaired or reset")
            if self.ended:
                raise Unavailable("the bridge is stopping; reconnect with since= the last seq")
            if not trusted():
                raise Unauthenticated("this client certificate is no longer paired with this satellite")

    def close(self) -> None:
        self.bus.subscribers.discard(self)


def cached_generation(state: StateService, stamp: Callable[[], Hashable]) -> Callable[[], int]:
    """state.current()'s generation, read again only when the state directory changed (one
    stat() per event otherwise)."""
    seen: list[Hashable] = [object()]
    value = [0]

    def generation() -> int:
        now = stamp()
        if now != seen[0]:
            value[0] = state.current()[1]
            seen[0] = now
        return value[0]

    return generation


# -- ports the feeds use -------------------------------------------------------------------------


class AuditSource(Protocol):
    """New audit-log entries (system/audit.py)."""

    def changed(self) -> bool:
        """Whether the file grew or was replaced since the last read (one stat())."""
        ...

    def read_new(self) -> list[dict[str, object]]:
        """Entries appended since the last call (blocking: run off the loop)."""
        ...


Stop = Callable[[], Awaitable[None]]


class Watching(Protocol):
    """A signal subscription: alive() while its bus connection is up; calling it stops it."""

    def alive(self) -> bool: ...

    def __call__(self) -> Awaitable[None]: ...


class UnitWatch(Protocol):
    async def watch_unit(self, unit: str, on_change: Callable[[UnitState], None]) -> Watching:
        """Call on_change with the unit's state now and on each of systemd's PropertiesChanged."""
        ...


class CheckpointWatch(Protocol):
    async def watch_checkpoints(self, on_change: Callable[[], None]) -> Watching:
        """Call on_change when NetworkManager's list of checkpoints changes."""
        ...


class PendingNetwork(Protocol):
    """The part of services.network.NetworkService the network feed uses."""

    def pending(self) -> object | None: ...

    async def show(self) -> object: ...


# -- feeds ---------------------------------------------------------------------------------------


class Feeds:
    """The feeds of one server process: start() them all, stop() them all."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._tasks: set[asyncio.Task[None]] = set()
        self._stops: list[Stop] = []

    def spawn(self, coro: Awaitable[None], name: str) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event feed %s failed", name)

        task = asyncio.get_running_loop().create_task(guarded(), name=f"events-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_stop(self, stop: Stop) -> None:
        self._stops.append(stop)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for stop in self._stops:
            with contextlib.suppress(Exception):
                await stop()
        self._stops.clear()


async def audit_feed(bus: EventBus, source: AuditSource, wake: asyncio.Event | None = None, every: float = 0.2) -> None:
    """Audit entries -> events, forever: at once when `wake` is set (inotify on the log's
    directory), and every `every` seconds in any case (one stat() when nothing changed)."""
    while True:
        if source.changed():
            for record in await asyncio.to_thread(source.read_new):
                payload = ev.from_audit(record)
                if payload is not None:
                    bus.publish(payload)
        if wake is None:
            await asyncio.sleep(every)
            continue
        # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancellation that comes
        # as the event is set (the feed then never stopped: a hang at the bridge's stop).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):
                await wake.wait()
        wake.clear()  # before the next look: a write after it sets it again


async def start_xcc_feed(bus: EventBus, units: UnitWatch) -> Watching:
    """xcc.service's state changes -> events (only when one of the four fields changed)."""
    last: list[tuple[str, str, int, str]] = []

    def on_change(state: UnitState) -> None:
        key = (state.active_state, state.sub_state, state.main_pid, state.result)
        if last and last[0] == key:
            return
        last[:] = [key]
        bus.publish(ev.XccChanged(*key))

    return await units.watch_unit(XCC_UNIT, on_change)


async def start_network_feed(feeds: Feeds, network: PendingNetwork, nm: CheckpointWatch, locks: Locks) -> Watching:
    """A checkpoint gone -> the network service looks at once (under the console's lock, so a
    confirm or revert in progress finishes first): a rollback by NetworkManager's timer is
    recorded then, and the audit feed makes it an event."""

    async def settle() -> None:
        for _ in range(60):  # the previous setting can take a while to be in force again
            async with locks.hold("network", timeout=60):
                if network.pending() is None:
                    return
                await network.show()
                if network.pending() is None:
                    return
            await asyncio.sleep(0.5)

    return await nm.watch_checkpoints(lambda: feeds.spawn(settle(), "network-settle"))


async def resource_feed(bus: EventBus, host: HostInfo, every: float = 10.0) -> None:
    """Disk (the state directory's file system) and memory crossing core.events.LOW_BELOW."""
    low = {"DISK": False, "MEMORY": False}
    while True:
        disk, memory = await asyncio.to_thread(lambda: (host.disk(), host.memory()))
        for name, free, total in (
            ("DISK", disk.free_bytes, disk.total_bytes),
            ("MEMORY", memory.available_bytes, memory.total_bytes),
        ):
            now = ev.is_low(free, total, low[name])
            if now != low[name]:
                low[name] = now
                bus.publish(ev.ResourceLow(name, now, free, total))
        await asyncio.sleep(every)
