"""XCC service control: only xcc.service, through the Units port (systemd over D-Bus)."""

from __future__ import annotations

import asyncio
import logging

from satbridge.core.units import XCC_UNIT, JobFailed, UnitState, XccStatus, upgrade_xcc_unit
from satbridge.errors import Aborted, FailedPrecondition, InvalidArgument
from satbridge.services.ports import Locks, ReleasesPort, UnitLogs, Units

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 90.0
MAX_TIMEOUT = 600.0
SETTLE_SECONDS = 1.5
"""After a start job is done, XCC must stay active this long: a crash right at start (a bad
config, a port in use) is an ABORTED start, not a success followed by auto-restart."""


class XccService:
    def __init__(
        self,
        units: Units,
        logs: UnitLogs,
        locks: Locks,
        releases: ReleasesPort,
        *,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        self.units = units
        self.logs = logs
        self.locks = locks
        self.releases = releases
        self.settle_seconds = settle_seconds

    def installed(self) -> bool:
        return self.units.has_unit_file(XCC_UNIT)

    def version(self) -> str:
        """The release `current` points at (/opt/xcc/current -> releases/<version>)."""
        return self.releases.current()

    async def status(self) -> XccStatus:
        if not self.installed():
            return XccStatus(False, "", UnitState())
        return XccStatus(True, self.version(), await self.units.state(XCC_UNIT))

    async def control(self, verb: str, *, timeout: float = 0) -> XccStatus:
        """start, stop or restart XCC and wait for systemd's job. One at a time, across processes."""
        if verb not in {"start", "stop", "restart"}:
            raise ValueError(verb)
        wait = timeout or DEFAULT_TIMEOUT
        if not 0 < wait <= MAX_TIMEOUT:
            raise InvalidArgument(f"must be 1..{MAX_TIMEOUT:g} seconds", field="timeout_seconds")
        if not self.installed():
            raise FailedPrecondition("XCC is not installed on this satellite (install it with `satctl commission`)")
        async with self.locks.hold("xcc", timeout=wait):
            await self._upgrade_unit()
            try:
                await self.units.run_job(verb, XCC_UNIT, timeout=wait)
                if verb != "stop":
                    await self._settled(verb)
            except JobFailed as failed:
                raise Aborted(await self._explain(failed)) from None
        return await self.status()

    async def _upgrade_unit(self) -> None:
        """Units installed by an older bridge (Type=simple) become Type=exec before they run."""
        text = await self.units.read_unit_file(XCC_UNIT)
        upgraded = upgrade_xcc_unit(text) if text is not None else None
        if upgraded is not None:
            log.info("rewriting %s from Type=simple to Type=exec", XCC_UNIT)
            await self.units.write_unit_file(XCC_UNIT, upgraded)

    async def _settled(self, verb: str) -> None:
        """JobFailed unless the unit stays active for SETTLE_SECONDS after its job is done."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.settle_seconds
        while True:
            state = await self.units.state(XCC_UNIT)
            if state.active_state != "active":
                raise JobFailed(XCC_UNIT, verb, f"done, then the unit went {state.active_state}/{state.sub_state}")
            if loop.time() >= end:
                return
            await asyncio.sleep(0.1)

    async def _explain(self, failed: JobFailed) -> str:
        """The job's result, the unit's Result and exit status, and its last log lines."""
        parts = [f"{failed.verb} {failed.unit} failed: job {failed.result}"]
        try:
            state = await self.units.state(failed.unit)
            parts.append(
                f"unit {state.active_state}/{state.sub_state}, Result={state.result or '-'}, "
                f"exit status {state.exec_main_status}"
            )
        except Exception as exc:  # noqa: BLE001 - the explanation must not hide the failure
            parts.append(f"(state unavailable: {exc})")
        lines = await self.logs.tail(failed.unit, 10)
        if lines:
            parts.append("last log lines:\n  " + "\n  ".join(lines))
        return "; ".join(parts)
