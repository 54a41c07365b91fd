"""Disconnect from the central server: remove its trust, then stop XCC (which stays installed)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from satbridge.errors import SatbridgeError
from satbridge.services.pairing import PairingService
from satbridge.services.xcc import XccService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Disconnected:
    was_paired: bool
    xcc_stopped: bool
    problem: str = ""


class DisconnectService:
    def __init__(self, pairing: PairingService, xcc: XccService) -> None:
        self.pairing = pairing
        self.xcc = xcc

    async def disconnect(self, *, by: str) -> Disconnected:
        """Trust goes first and always: a failure to stop XCC is reported, never a reason to
        keep trusting the server."""
        was_paired = await asyncio.to_thread(self.pairing.unpair, by=by)
        if not self.xcc.installed():
            return Disconnected(was_paired, xcc_stopped=False)
        try:
            await self.xcc.control("stop")
        except SatbridgeError as exc:
            log.warning("disconnected, but XCC did not stop: %s", exc)
            return Disconnected(was_paired, xcc_stopped=False, problem=f"XCC did not stop: {exc}")
        return Disconnected(was_paired, xcc_stopped=True)
