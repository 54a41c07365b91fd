"""Factory reset: back to the state the satellite was delivered in (DESIGN §4).

Each step is idempotent, so an interrupted reset can simply be run again. The bridge binary,
its config and the audit log stay; a new identity makes every certificate issued before die.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from satbridge.core.units import XCC_UNIT
from satbridge.errors import FailedPrecondition, NotFound, SatbridgeError
from satbridge.services.disconnect import DisconnectService
from satbridge.services.firewall import FirewallService
from satbridge.services.identity import IdentityService
from satbridge.services.network import NetworkService
from satbridge.services.ports import AuditLog, Locks, Removable, Store, Units
from satbridge.services.state import StateService

log = logging.getLogger(__name__)

STATE_FILES = ("trust.json", "pairing-window.json", "firewall.json", "network-pending.json", "install.json")


@dataclass(frozen=True)
class Step:
    name: str
    done: bool
    detail: str = ""


class FactoryResetService:
    def __init__(
        self,
        disconnect: DisconnectService,
        identity: IdentityService,
        state: StateService,
        firewall: FirewallService,
        network: NetworkService,
        units: Units,
        store: Store,
        audit: AuditLog,
        *,
        xcc_files: Sequence[Removable],
        locks: Locks | None = None,
    ) -> None:
        self.disconnect = disconnect
        self.identity = identity
        self.state = state
        self.firewall = firewall
        self.network = network
        self.units = units
        self.store = store
        self.audit = audit
        self.xcc_files = xcc_files  # its releases, its logs, the staged uploads
        self.locks = locks  # one reset at a time across CLI, consoles and server

    async def run(self, *, by: str) -> AsyncIterator[Step]:
        """Do every step, reporting each; a failed step is reported and the others still run.
        One reset at a time: a second caller (another console, the CLI, the server) gets
        FailedPrecondition saying who started the running one and when."""
        if self.locks is None:
            async for step in self._run(by=by):
                yield step
            return
        with self.locks.claim("factory-reset", holder=by):
            async for step in self._run(by=by):
                yield step

    async def _run(self, *, by: str) -> AsyncIterator[Step]:
        self.audit.record("factory-reset-started", by=by)
        steps = [
            ("disconnect the server", self._disconnect),
            ("remove XCC", self._remove_xcc),
            ("restore the factory firewall", self._firewall),
            ("network back to DHCP", self._network),
            ("a new identity and a clean state", self._identity_and_state),
        ]
        failed = 0
        for name, step in steps:
            try:
                detail = await step()
            except SatbridgeError as exc:
                failed += 1
                log.warning("factory reset: %s failed: %s", name, exc)
                yield Step(name, False, str(exc))
                continue
            except Exception as exc:  # a reset must go on from any state
                failed += 1
                log.exception("factory reset: %s failed", name)
                yield Step(name, False, f"unexpected error {type(exc).__name__}: {exc}")
                continue
            yield Step(name, True, detail)
        self.audit.record(
            "factory-reset-finished" if not failed else "factory-reset-incomplete", by=by, failed_steps=failed
        )

    async def _disconnect(self) -> str:
        done = await self.disconnect.disconnect(by="factory reset")
        return "trust removed" if done.was_paired else "was not paired"

    async def _remove_xcc(self) -> str:
        if self.units.has_unit_file(XCC_UNIT):
            try:
                await self.units.run_job("stop", XCC_UNIT, timeout=90)
                await self.units.disable(XCC_UNIT)
            except Exception as exc:  # noqa: BLE001 - the files go regardless
                log.warning("stopping XCC before removing it: %s", exc)
            await self.units.remove_unit_file(XCC_UNIT)

        def wipe() -> int:
            return sum(directory.remove() for directory in self.xcc_files)

        return f"{await asyncio.to_thread(wipe)} directories removed"

    async def _firewall(self) -> str:
        state = await self.firewall.reset(by="factory reset")
        return f"revision {state.revision}"

    async def _network(self) -> str:
        # A change still awaiting confirmation is settled first: its checkpoint would otherwise
        # roll back over the DHCP set here.
        try:
            with contextlib.suppress(FailedPrecondition):
                await self.network.confirm()
            state = await self.network.set_dhcp(confirm_timeout=0)
        except NotFound as exc:  # no wired device: no network setting to put back
            return f"nothing to reset ({exc})"
        return ", ".join(state.addresses) or "waiting for a lease"

    async def _identity_and_state(self) -> str:
        with self.store.lock():
            for name in STATE_FILES:
                self.store.remove(name)
            self.identity.discard()
            self.state.reset()
            self.identity.ensure()
            self.state.ensure()
        return f"new identity {self.identity.current().fingerprint.hex()[:16]}…"
