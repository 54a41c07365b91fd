"""Plain data describing the satellite's host and state (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

from satbridge.core.network import NetworkState
from satbridge.core.pairing import ClosedForFailures
from satbridge.core.units import XccStatus


@dataclass(frozen=True)
class Address:
    interface: str
    address: str
    prefix_length: int


@dataclass(frozen=True)
class DiskUsage:
    path: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class MemoryUsage:
    total_bytes: int
    available_bytes: int


@dataclass(frozen=True)
class PairingStatus:
    paired: bool
    peer_name: str = ""
    peer_fingerprint: str = ""
    paired_at: float | None = None
    window_open: bool = False
    window_expires_at: float | None = None
    attempts_left: int = 0
    # The last window, when wrong codes from many sources closed it (until one opens again).
    closed_for_failures: ClosedForFailures | None = None


@dataclass(frozen=True)
class Status:
    hostname: str
    addresses: list[Address]
    uptime_seconds: float
    disk: DiskUsage
    memory: MemoryUsage
    bridge_version: str
    pairing: PairingStatus
    state_generation: int
    instance_id: str
    boot_id: str
    time: float
    xcc: XccStatus | None = None
    firewall_revision: int = 0
    network: NetworkState | None = None
    warnings: list[str] = field(default_factory=list)
