"""GetStatus / `satbridge status`: one overview built from the ports."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from satbridge.core.status import Status
from satbridge.errors import SatbridgeError
from satbridge.services.firewall import FirewallService
from satbridge.services.network import NetworkService
from satbridge.services.pairing import PairingService
from satbridge.services.ports import Clock, HostInfo
from satbridge.services.state import StateService
from satbridge.services.xcc import XccService


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
    ) -> None:
        self.host = host
        self.pairing = pairing
        self.state = state
        self.xcc = xcc
        self.firewall = firewall
        self.network = network
        self.clock = clock
        self.version = version

    async def get(self) -> Status:
        """Everything at once; a part that cannot be read becomes a warning, not a failure."""
        status = await asyncio.to_thread(self._local)
        warnings = list(status.warnings)
        try:
            status = replace(status, xcc=await self.xcc.status())
        except SatbridgeError as exc:
            warnings.append(f"XCC state unavailable: {exc}")
        try:
            fw = await self.firewall.get()
            status = replace(status, firewall_revision=fw.revision)
            warnings += fw.warnings
        except SatbridgeError as exc:
            warnings.append(f"firewall state unavailable: {exc}")
        try:
            status = replace(status, network=await self.network.show())
        except SatbridgeError as exc:
            warnings.append(f"network state unavailable: {exc}")
        return replace(status, warnings=warnings)

    def _local(self) -> Status:
        instance_id, generation = self.state.current()
        return Status(
            hostname=self.host.hostname(),
            addresses=self.host.addresses(),
            uptime_seconds=self.host.uptime_seconds(),
            disk=self.host.disk(),
            memory=self.host.memory(),
            bridge_version=self.version,
            pairing=self.pairing.status(),
            state_generation=generation,
            instance_id=instance_id,
            boot_id=self.host.boot_id(),
            time=self.clock(),
        )
