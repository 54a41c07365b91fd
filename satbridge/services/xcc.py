"""XCC service control: only xcc.service, through the Units port (systemd over D-Bus)."""

from __future__ import annotations

import logging

from satbridge.core.units import XCC_UNIT, JobFailed, UnitState, XccStatus
from satbridge.errors import Aborted, FailedPrecondition, InvalidArgument
from satbridge.services.ports import Locks, ReleasesPort, UnitLogs, Units

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 90.0
MAX_TIMEOUT = 600.0


class XccService:
    def __init__(self, units: Units, logs: UnitLogs, locks: Locks, releases: ReleasesPort) -> None:
        self.units = units
        self.logs = logs
        self.locks = locks
        self.releases = releases

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
            try:
                await self.units.run_job(verb, XCC_UNIT, timeout=wait)
            except JobFailed as failed:
                raise Aborted(await self._explain(failed)) from None
        return await self.status()

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
