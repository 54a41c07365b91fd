"""Service results -> protobuf messages (and nothing else)."""

from __future__ import annotations

import dataclasses
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from satbridge.api.v1 import firewall_pb2, system_pb2, xcc_pb2
from satbridge.core import events as ev
from satbridge.core.network import NetworkState
from satbridge.core.status import PairingStatus, Status
from satbridge.core.units import XccStatus
from satbridge.protocol import rule_set_msg
from satbridge.services.firewall import FirewallState


def timestamp(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def pairing_state(p: PairingStatus) -> system_pb2.PairingState:
    return system_pb2.PairingState(
        paired=p.paired,
        peer_name=p.peer_name,
        peer_fingerprint=p.peer_fingerprint,
        paired_at=timestamp(p.paired_at),
        window_open=p.window_open,
        window_expires_at=timestamp(p.window_expires_at),
        attempts_left=p.attempts_left if p.window_open else 0,
    )


def xcc_state(x: XccStatus) -> xcc_pb2.XccState:
    u = x.unit
    return xcc_pb2.XccState(
        installed=x.installed,
        active_state=u.active_state if x.installed else "",
        sub_state=u.sub_state if x.installed else "",
        since=timestamp(u.since),
        version=x.version,
        main_pid=u.main_pid,
        exec_main_status=u.exec_main_status,
        result=u.result,
        enabled=u.enabled,
    )


def network_state(n: NetworkState) -> system_pb2.NetworkState:
    return system_pb2.NetworkState(
        interface=n.interface,
        method=n.method,
        addresses=list(n.addresses),
        gateway=n.gateway,
        dns=list(n.dns),
        search_domains=list(n.search),
        dhcp_lease=n.dhcp,
        hostname=n.hostname,
        rollback_in_seconds=int(n.pending_rollback_in + 0.999),
    )


def status(s: Status) -> system_pb2.GetStatusResponse:
    return system_pb2.GetStatusResponse(
        hostname=s.hostname,
        addresses=[
            system_pb2.InterfaceAddress(interface=a.interface, address=a.address, prefix_length=a.prefix_length)
            for a in s.addresses
        ],
        uptime_seconds=int(s.uptime_seconds),
        disk=system_pb2.DiskUsage(path=s.disk.path, total_bytes=s.disk.total_bytes, free_bytes=s.disk.free_bytes),
        memory=system_pb2.MemoryUsage(total_bytes=s.memory.total_bytes, available_bytes=s.memory.available_bytes),
        bridge_version=s.bridge_version,
        pairing=pairing_state(s.pairing),
        state_generation=s.state_generation,
        instance_id=s.instance_id,
        boot_id=s.boot_id,
        warnings=s.warnings,
        time=timestamp(s.time),
        xcc=xcc_state(s.xcc) if s.xcc else None,
        firewall_revision=s.firewall_revision,
        network=network_state(s.network) if s.network else None,
    )


def firewall_state(s: FirewallState) -> firewall_pb2.FirewallState:
    return firewall_pb2.FirewallState(
        rules=rule_set_msg(s.rules),
        revision=s.revision,
        pending_revision=s.pending_revision,
        rollback_in_seconds=int(s.rollback_in + 0.999),
        warnings=list(s.warnings),
    )


_PAYLOADS: dict[str, Any] = {
    "xcc": system_pb2.XccUnitChanged,
    "install": system_pb2.InstallProgress,
    "firewall": system_pb2.FirewallChanged,
    "network": system_pb2.NetworkChanged,
    "pairing": system_pb2.PairingChanged,
    "resource": system_pb2.ResourceLow,
    "bridge": system_pb2.BridgeLifecycle,
    "factory_reset": system_pb2.FactoryReset,
}


def event(item: ev.Event | ev.Lost, run: str) -> system_pb2.Event:
    """One ring entry (or a Lost marker, seq 0) -> satbridge.v1.Event. Enum fields go by name
    (core.events spells them as the proto does)."""
    if isinstance(item, ev.Lost):
        lost = system_pb2.EventsLost(reason=item.reason, first_available_seq=item.first_available_seq)
        return system_pb2.Event(run=run, lost=lost)
    payload = item.payload
    msg = _PAYLOADS[payload.KIND](**dataclasses.asdict(payload))
    return system_pb2.Event(
        seq=item.seq,
        time=timestamp(item.time),
        state_generation=item.generation,
        run=run,
        **{payload.KIND: msg},
    )
