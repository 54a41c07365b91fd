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
NOTHING_TO_DO = "already in force: nothing to change"
DEFAULT_CONFIRM_TIMEOUT = 30
MAX_CONFIRM_TIMEOUT = 600


@dataclass(frozen=True)
class Pending:
    checkpoint: str
    deadline: float
    what: str
    previous: dict[str, Any] | None = None  # the settings before the change, to revert to


LOST = (
    "NetworkManager restarted (or dropped its checkpoint): the change ({what}) was NOT rolled back"
    " and stays in force; keep it (`satbridge network confirm`) or revert it (`satbridge network revert`)"
)


def _previous(data: Any) -> dict[str, Any]:
    settings = schema.obj(data, "previous settings", required=("method", "addresses", "gateway", "dns", "search"))
    schema.text(settings, "method", limit=16)
    schema.text(settings, "gateway", limit=64)
    for key in ("addresses", "dns", "search"):
        schema.strings(settings, key)
    return settings


def _pending(data: Any) -> Pending:
    """network-pending.json's schema. Damage drops it: NetworkManager rolls its checkpoint back
    by itself (or, when NM lost it, the change simply stays, as confirmed)."""
    data = schema.obj(data, "pending network change", required=("checkpoint", "deadline", "what"))
    previous = data.get("previous")
    return Pending(
        schema.text(data, "checkpoint", limit=255),
        schema.timestamp(data, "deadline"),
        schema.text(data, "what", limit=255),
        _previous(previous) if previous is not None else None,
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

    async def _pending(self) -> tuple[Pending | None, bool]:
        """The pending change and whether NetworkManager lost its checkpoint.

        Checked against the daemon on every read, never the file alone: a checkpoint dies with
        NetworkManager, and then nothing rolls the change back. Its deadline is NM's own. When the
        checkpoint is gone and the settings in force are the previous ones, NM rolled it back:
        nothing is pending. When they are not, the change was lost, not reverted: reported as
        such until the admin keeps or reverts it (a file without the previous settings, from
        before this check, cannot tell: nothing is pending)."""
        pending = self.store.read_json(PENDING_FILE, _pending)
        if pending is None:
            return None, False
        try:
            deadline = await self.network.rollback_deadline(pending.checkpoint)
        except NotFound:
            if pending.previous is not None and not _same(await self.network.state(), pending.previous):
                return pending, True
            self._rolled_back(pending)
            return None, False
        return replace(pending, deadline=deadline), False

    def _rolled_back(self, pending: Pending) -> None:
        """NetworkManager put the previous setting back: the first reader to notice removes the
        file and says so in the audit log, once (under the lock)."""
        with self.store.lock():
            again = self.store.read_json(PENDING_FILE, _pending)
            if again is not None and again.checkpoint == pending.checkpoint:
                self.store.remove(PENDING_FILE)
                self.state.bump()
                self.audit.record("network-reverted", what=pending.what, reason="not confirmed in time")

    def pending(self) -> Pending | None:
        """The change awaiting confirmation as every console sees it, from the shared file alone
        (the console's header reads it every second without asking NetworkManager; show() and
        status() check it against NetworkManager's checkpoints). Past its deadline it is gone."""
        pending = self.store.read_json(PENDING_FILE, _pending)
        if pending is None or pending.deadline > self.clock():
            return pending
        self._rolled_back(pending)
        return None

    async def show(self) -> NetworkState:
        state = await self.network.state()
        pending, lost = await self._pending()
        if pending and lost:
            state = replace(state, pending_lost=LOST.format(what=pending.what))
        elif pending:
            state = replace(state, pending_rollback_in=max(0.0, pending.deadline - self.clock()))
        return state

    async def _apply(self, static: StaticIPv4 | None, confirm_timeout: int, what: str) -> NetworkState:
        if not 0 <= confirm_timeout <= MAX_CONFIRM_TIMEOUT:
            raise InvalidArgument(f"must be 0..{MAX_CONFIRM_TIMEOUT} seconds", field="confirm_timeout")
        async with self.locks.hold("network", timeout=60):
            pending, lost = await self._pending()
            if lost and pending:
                raise FailedPrecondition(LOST.format(what=pending.what))
            if pending:
                raise FailedPrecondition("a change awaits confirmation; confirm it or let it roll back first")
            current = await self.network.state()
            if _in_force(current, static):
                # Nothing to change: no checkpoint (no countdown to answer), no audit entry.
                return replace(await self.show(), note=NOTHING_TO_DO)
            before = _settings(current)
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
                        json.dumps(
                            {"checkpoint": checkpoint, "deadline": deadline, "what": what, "previous": before}
                        ).encode(),
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
        """Keep the pending change (also one whose checkpoint NetworkManager lost)."""
        async with self.locks.hold("network", timeout=60):
            pending, lost = await self._pending()
            if not pending:
                raise FailedPrecondition("no network change awaits confirmation")
            if not lost:
                await self.network.confirm(pending.checkpoint)
            with self.store.lock():
                self.store.remove(PENDING_FILE)
            self.audit.record("network-confirmed", what=pending.what, checkpoint_lost=int(lost))
        return await self.show()

    async def revert(self) -> NetworkState:
        """Put the settings from before the pending change back, at once and for good (they
        worked before it). What an admin expects after NetworkManager lost the checkpoint; for
        a change still pending, the same as letting its timer run out, without the wait."""
        async with self.locks.hold("network", timeout=60):
            pending, lost = await self._pending()
            if not pending:
                raise FailedPrecondition("no network change awaits confirmation or revert")
            if pending.previous is None:
                raise FailedPrecondition("the settings before the change were not recorded; set them again")
            previous = _static(pending.previous)
            if not lost:
                await self.network.confirm(pending.checkpoint)  # its timer must not fire over the revert
            await self.network.apply(previous, confirm_timeout=0)
            with self.store.lock():
                self.store.remove(PENDING_FILE)
                self.state.bump()
            self.audit.record("network-reverted", what=pending.what, checkpoint_lost=int(lost))
        return await self.show()

    async def set_hostname(self, name: str) -> NetworkState:
        name = check_hostname(name)
        await self.network.set_hostname(name)
        self.audit.record("hostname-set", hostname=name)
        # SaveHostname returns once the name is written; NM's Hostname property follows only
        # when its file monitor fires, so report what was saved.
        return replace(await self.show(), hostname=name)


def _settings(state: NetworkState) -> dict[str, Any]:
    """What is in force, as kept in network-pending.json to revert to."""
    return {
        "method": state.method,
        "addresses": list(state.addresses),
        "gateway": state.gateway,
        "dns": list(state.dns),
        "search": list(state.search),
    }


def _in_force(state: NetworkState, static: StaticIPv4 | None) -> bool:
    """Whether the requested setting (None: DHCP) is the one NetworkManager runs now."""
    if static is None:
        return state.method == "auto"
    return (
        state.method == "manual"
        and tuple(state.addresses) == (str(static.address),)
        and state.gateway == (str(static.gateway) if static.gateway else "")
        and tuple(state.dns) == tuple(str(d) for d in static.dns)
        and tuple(state.search) == tuple(static.search)
    )


def _same(state: NetworkState, settings: dict[str, Any]) -> bool:
    return bool(state.method == settings["method"] and list(state.addresses) == settings["addresses"])


def _static(settings: dict[str, Any]) -> StaticIPv4 | None:
    if settings["method"] != "manual":
        return None  # DHCP (or what NM does by default)
    if not settings["addresses"]:
        raise FailedPrecondition("the settings before the change had no address; set them again")
    return validate_static(settings["addresses"][0], settings["gateway"] or None, settings["dns"], settings["search"])
