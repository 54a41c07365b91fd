"""Static IP or DHCP, with NetworkManager's own rollback: a change made with a confirm timeout
is undone by NM unless confirmed in time (the console's "keep this setting? reverting in 30 s").
The pending checkpoint is kept in a state file, so another process (the CLI) can confirm it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from satbridge.core import schema
from satbridge.core.network import NetworkState, StaticIPv4, check_hostname, validate_static
from satbridge.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from satbridge.services.ports import AuditLog, Clock, Locks, Network, Store
from satbridge.services.state import StateService

PENDING_FILE = "network-pending.json"
DEFAULT_CONFIRM_TIMEOUT = 30
MAX_CONFIRM_TIMEOUT = 600


@dataclass(frozen=True)
class Pending:
    checkpoint: str
    deadline: float
    what: str


def _pending(data: Any) -> Pending:
    """network-pending.json's schema. Damage drops it: NetworkManager rolls its checkpoint back
    by itself (or, when NM lost it, the change simply stays, as confirmed)."""
    data = schema.obj(data, "pending network change", required=("checkpoint", "deadline", "what"))
    return Pending(
        schema.text(data, "checkpoint", limit=255),
        schema.timestamp(data, "deadline"),
        schema.text(data, "what", limit=255),
    )


class NetworkService:
    def __init__(
        self, network: Network, store: Store, locks: Locks, audit: AuditLog, state: StateService, clock: Clock
    ) -> None:
        self.network = network
        self.store = store
        self.locks = locks
        self.audit = audit
        self.state = state
        self.clock = clock

    def _pending(self) -> Pending | None:
        pending = self.store.read_json(PENDING_FILE, _pending)
        if pending is None:
            return None
        return pending if pending.deadline > self.clock() else None  # else NM has rolled it back

    async def show(self) -> NetworkState:
        state = await self.network.state()
        pending = self._pending()
        if pending:
            state = replace(state, pending_rollback_in=pending.deadline - self.clock())
        return state

    async def _apply(self, static: StaticIPv4 | None, confirm_timeout: int, what: str) -> NetworkState:
        if not 0 <= confirm_timeout <= MAX_CONFIRM_TIMEOUT:
            raise InvalidArgument(f"must be 0..{MAX_CONFIRM_TIMEOUT} seconds", field="confirm_timeout")
        async with self.locks.hold("network", timeout=60):
            if self._pending():
                raise FailedPrecondition("a change awaits confirmation; confirm it or let it roll back first")
            began = self.clock()
            checkpoint = await self.network.apply(static, confirm_timeout=confirm_timeout)
            settled_in = self.clock() - began
            deadline = 0.0
            if checkpoint:
                try:
                    # The daemon's own countdown: it started when the checkpoint was made, so a
                    # change slow to settle (a late DHCP server) has less than confirm_timeout left.
                    deadline = await self.network.rollback_deadline(checkpoint)
                except NotFound:
                    raise Aborted(
                        f"the change took {settled_in:.0f} s to take effect, longer than the {confirm_timeout} s"
                        " confirm timeout: NetworkManager has already put the previous setting back"
                    ) from None
            with self.store.lock():
                if checkpoint:
                    self.store.write(
                        PENDING_FILE,
                        json.dumps({"checkpoint": checkpoint, "deadline": deadline, "what": what}).encode(),
                    )
                else:
                    self.store.remove(PENDING_FILE)
                self.state.bump()
            self.audit.record(
                "network-changed", what=what, confirm_timeout=confirm_timeout, settled_in_ms=int(settled_in * 1000)
            )
        return replace(await self.show(), settled_in=settled_in)

    async def set_dhcp(self, *, confirm_timeout: int = DEFAULT_CONFIRM_TIMEOUT) -> NetworkState:
        return await self._apply(None, confirm_timeout, "dhcp")

    async def set_static(
        self,
        address: str,
        gateway: str | None,
        dns: list[str],
        search: list[str] | None = None,
        *,
        confirm_timeout: int = DEFAULT_CONFIRM_TIMEOUT,
    ) -> NetworkState:
        static = validate_static(address, gateway, dns, search)
        return await self._apply(static, confirm_timeout, f"static {static.address}")

    async def confirm(self) -> NetworkState:
        async with self.locks.hold("network", timeout=60):
            pending = self._pending()
            if not pending:
                raise FailedPrecondition("no network change awaits confirmation")
            await self.network.confirm(pending.checkpoint)
            with self.store.lock():
                self.store.remove(PENDING_FILE)
            self.audit.record("network-confirmed", what=pending.what)
        return await self.show()

    async def set_hostname(self, name: str) -> NetworkState:
        name = check_hostname(name)
        await self.network.set_hostname(name)
        self.audit.record("hostname-set", hostname=name)
        # SaveHostname returns once the name is written; NM's Hostname property follows only
        # when its file monitor fires, so report what was saved.
        return replace(await self.show(), hostname=name)
