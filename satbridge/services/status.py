"""GetStatus / `satbridge status`: one overview built from the ports."""

from __future__ import annotations

from satbridge.core.status import Status
from satbridge.services.pairing import PairingService
from satbridge.services.ports import Clock, HostInfo
from satbridge.services.state import StateService


class StatusService:
    def __init__(
        self, host: HostInfo, pairing: PairingService, state: StateService, clock: Clock, version: str
    ) -> None:
        self.host = host
        self.pairing = pairing
        self.state = state
        self.clock = clock
        self.version = version

    def get(self) -> Status:
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
