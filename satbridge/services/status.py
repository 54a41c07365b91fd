"""GetStatus / `satbridge status`: one overview built from the ports."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from satbridge.core.status import Address, DiskUsage, MemoryUsage, PairingStatus, Status
from satbridge.errors import SatbridgeError
from satbridge.services.firewall import FirewallService
from satbridge.services.network import NetworkService
from satbridge.services.pairing import PairingService
from satbridge.services.ports import Clock, HostInfo
from satbridge.services.state import StateService
from satbridge.services.xcc import XccService

T = TypeVar("T")
log = logging.getLogger(__name__)


PART_DEADLINE = 2.0
"""Seconds each part of the status may take (satctl's default deadline is 15 s; the parts run
side by side, so a whole status answers within about this, whatever hangs)."""

RECENT_MAX_AGE = 1.0
"""Seconds a status read for one GetStatus caller serves the others (its `time` says when it was
read). Pollers (a management server, 50 of them every 0.2 s) then cost one read a second, not one
each; a state file written meanwhile (pairing, firewall, generation) makes the next call read anew."""


class StatusService:
    def __init__(
        self,
        host: HostInfo,
        pairing: PairingService,
        state: StateService,
        xcc: XccService,
        firewall: FirewallService,
        network: NetworkService,
        clock: Clock,
        version: str,
        *,
        part_deadline: float = PART_DEADLINE,
        state_stamp: Callable[[], object] = lambda: None,
    ) -> None:
        self.host = host
        self.pairing = pairing
        self.state = state
        self.xcc = xcc
        self.firewall = firewall
        self.network = network
        self.clock = clock
        self.version = version
        self.part_deadline = part_deadline
        self.state_stamp = state_stamp  # changes whenever a state file is written (by any process)
        self._recent: tuple[object, float, Status] | None = None  # (stamp, monotonic time read, status)
        self._reading: dict[object, asyncio.Future[Status]] = {}

    async def recent(self, max_age: float = RECENT_MAX_AGE) -> Status:
        """`get()`, or one read at most `max_age` seconds ago (never older: its `time` is when it
        was read) while no state file changed since. Callers that arrive during a read share it."""
        stamp = self.state_stamp()
        cached = self._recent
        if cached is not None and cached[0] == stamp and time.monotonic() - cached[1] <= max_age:
            return cached[2]
        reading = self._reading.get(stamp)
        if reading is None:
            reading = self._reading[stamp] = asyncio.ensure_future(self._read(stamp))
        return await asyncio.shield(reading)  # one caller giving up does not cancel the others' read

    async def _read(self, stamp: object) -> Status:
        try:
            started = time.monotonic()
            status = await self.get()
            self._recent = (stamp, started, status)
            return status
        finally:
            del self._reading[stamp]

    def forget(self) -> None:
        """Something changed that no state file shows (XCC started or stopped): read anew."""
        self._recent = None

    async def get(self) -> Status:
        """Everything at once, within about `part_deadline` seconds: a part that fails or does
        not answer in time becomes a warning that names it, never a failure of the whole."""
        final: Status | None = None
        async for partial in self.updates():
            final = partial
        assert final is not None  # updates() yields at least once
        return final

    async def updates(self) -> AsyncIterator[Status]:
        """The status as it fills in (the console draws each): first what this host knows
        without asking a daemon, then one more part each time one answers. The last one carries
        a warning for each part that failed or missed its deadline."""
        warnings: list[str] = []
        host_part, pairing_part, state_part = await asyncio.gather(
            self._part("host information", asyncio.to_thread(self._host)),
            self._part("pairing state", asyncio.to_thread(self.pairing.status)),
            self._part("instance state", asyncio.to_thread(self.state.current)),
        )
        host = host_part if isinstance(host_part, _Host) else None
        pairing = pairing_part if isinstance(pairing_part, PairingStatus) else None
        instance = state_part if isinstance(state_part, tuple) else None
        status = Status(
            hostname=host.hostname if host else "",
            addresses=host.addresses if host else [],
            uptime_seconds=host.uptime_seconds if host else 0.0,
            disk=host.disk if host else DiskUsage("", 0, 0),
            memory=host.memory if host else MemoryUsage(0, 0),
            bridge_version=self.version,
            pairing=pairing or PairingStatus(False),
            state_generation=instance[1] if instance else 0,
            instance_id=instance[0] if instance else "",
            boot_id=host.boot_id if host else "",
            time=self.clock(),
        )
        for part in (host_part, pairing_part, state_part):
            if isinstance(part, str):
                warnings.append(part)
        yield replace(status, warnings=list(warnings))

        async def xcc() -> Callable[[Status], Status]:
            x = await self.xcc.status()
            return lambda s: replace(s, xcc=x)

        async def firewall() -> Callable[[Status], Status]:
            fw = await self.firewall.get()
            warnings.extend(fw.warnings)
            return lambda s: replace(s, firewall_revision=fw.revision)

        async def network() -> Callable[[Status], Status]:
            n = await self.network.show()
            return lambda s: replace(s, network=n)

        pending = [
            asyncio.ensure_future(self._part(name, job()))
            for name, job in (("XCC state", xcc), ("firewall state", firewall), ("network state", network))
        ]
        try:
            for done in asyncio.as_completed(pending):
                result = await done
                if isinstance(result, str):
                    warnings.append(result)
                else:
                    status = result(status)
                yield replace(status, warnings=list(warnings))
        finally:
            for task in pending:
                task.cancel()

    async def _part(self, name: str, job: Awaitable[T]) -> T | str:
        """The part's value, or the warning that replaces it."""
        try:
            return await asyncio.wait_for(job, self.part_deadline)
        except TimeoutError:
            return f"{name} unavailable: no answer within {self.part_deadline:g} s"
        except SatbridgeError as exc:
            return f"{name} unavailable: {exc}"
        except Exception as exc:  # a bug in one part must not sink the whole status
            log.exception("status: %s failed", name)
            return f"{name} unavailable: unexpected error {type(exc).__name__}: {exc}"

    def _host(self) -> _Host:
        h = self.host
        return _Host(h.hostname(), h.addresses(), h.uptime_seconds(), h.disk(), h.memory(), h.boot_id())


@dataclass(frozen=True)
class _Host:
    hostname: str
    addresses: list[Address]
    uptime_seconds: float
    disk: DiskUsage
    memory: MemoryUsage
    boot_id: str
