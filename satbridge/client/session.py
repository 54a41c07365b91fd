"""The satctl library: pair with a satellite, then call it over mutual TLS.

sat = await pair("192.0.2.10", "K7QM-9T2X-HF4D-PW8R", inventory=inv, server_name="central")
async with connect(sat, inv) as client:
    status = await client.status()
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import cast

import grpc

from satbridge.api.v1 import (
    firewall_pb2,
    firewall_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    pairing_pb2,
    pairing_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    xcc_pb2,
    xcc_pb2_grpc,
)
from satbridge.client.errors import call, from_rpc_error
from satbridge.client.inventory import Inventory, Satellite
from satbridge.core.names import TLS_SERVER_NAME, check_peer_name
from satbridge.errors import InvalidArgument, PermissionDenied, Unauthenticated, Unavailable

DEFAULT_PORT = 50051
DEFAULT_PAIRING_PORT = 50052
XCC_DEFAULT_WAIT = 90
"""Seconds the satellite waits for systemd when XccControlRequest.timeout_seconds is 0."""


def target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _options() -> list[tuple[str, object]]:
    return [
        ("grpc.ssl_target_name_override", TLS_SERVER_NAME),
        ("grpc.enable_retries", 0),
        # Each channel opens its own connections instead of sharing the process-wide pool: one
        # channel is one session with one satellite, and a pairing challenge is bound to it.
        ("grpc.use_local_subchannel_pool", 1),
    ]


def check_host(host: str) -> str:
    """The satellite's address as typed: a name or an IPv4/IPv6 address, without a port (the
    ports have their own flags, so `HOST:PORT` is refused rather than guessed at)."""
    import re

    if not host or len(host) > 253 or not host.isascii() or not host.isprintable() or " " in host:
        raise InvalidArgument("a host name or an IP address, in ASCII", field="HOST")
    if re.fullmatch(r"\[[^\]]*\]:[0-9]*|[^:]*:[0-9]*", host):
        raise InvalidArgument(
            f"{host!r} carries a port: give the address alone, and the ports as --port (management, default "
            f"{DEFAULT_PORT}) and --pairing-port (default {DEFAULT_PAIRING_PORT})",
            field="HOST",
        )
    return host


IDENTITY_CHANGED = "REMOTE IDENTITY CHANGED"


def repair_command(sat: Satellite) -> str:
    """The satctl line that pairs this entry's satellite again, under the same name and ports."""
    flags = "" if sat.port == DEFAULT_PORT else f" --port {sat.port}"
    flags += "" if sat.pairing_port == DEFAULT_PAIRING_PORT else f" --pairing-port {sat.pairing_port}"
    return f"satctl pair {sat.host} CODE --name {sat.name}{flags}"


async def explain_unreachable(sat: Satellite, timeout: float) -> None:
    """After a call failed as UNAVAILABLE: read the identity the address presents now, and when
    it is not the pinned one, say so the way ssh does (it was factory-reset, or someone is in
    the middle), with what to do. Returns when the identity is the same or cannot be read."""
    import hashlib

    from satbridge.tls.handshake import fetch_server_certificate

    try:
        der = await fetch_server_certificate(sat.host, sat.port, timeout=min(timeout, 5.0))
    except Unavailable:
        return
    now = hashlib.sha256(der).hexdigest()
    if now == sat.fingerprint:
        return
    raise Unauthenticated(
        f"{IDENTITY_CHANGED}: {sat.name} at {target(sat.host, sat.port)} presents identity {now[:16]}…, not the "
        f"{sat.fingerprint[:16]}… paired with. It was factory-reset, or someone is in the middle. If you reset it: "
        f"open a pairing window on its console and run `{repair_command(sat)}` (it replaces this entry); "
        "if not, do not trust it"
    )


def pairing_channel(host: str, port: int, identity_pem: bytes) -> grpc.aio.Channel:
    creds = grpc.ssl_channel_credentials(root_certificates=identity_pem)
    return grpc.aio.secure_channel(target(host, port), creds, options=_options())


def management_channel(sat: Satellite, key_pem: bytes) -> grpc.aio.Channel:
    """Mutual TLS with the pinned identity as the only root."""
    creds = grpc.ssl_channel_credentials(
        root_certificates=sat.identity_pem.encode(), private_key=key_pem, certificate_chain=sat.cert_pem.encode()
    )
    return grpc.aio.secure_channel(target(sat.host, sat.port), creds, options=_options())


async def pair(
    host: str,
    code: str,
    *,
    inventory: Inventory,
    server_name: str,
    name: str | None = None,
    port: int = DEFAULT_PORT,
    pairing_port: int = DEFAULT_PAIRING_PORT,
    timeout: float = 15.0,
) -> Satellite:
    """Pair with the satellite at host; on success it is saved in the inventory as `name`."""
    # Only pairing needs these (cryptography above all): `satctl status` starts faster without.
    import hashlib

    from satbridge.core import pairing as proofs
    from satbridge.tls import certs
    from satbridge.tls.handshake import fetch_server_certificate

    # Validate every input before any network traffic.
    check_host(host)
    key = proofs.code_key(code)
    check_peer_name(server_name, field="server_name")
    inventory.check_name_free(name, host, port)  # before anything changes on the satellite
    der = await fetch_server_certificate(host, pairing_port, timeout=timeout)
    fp = hashlib.sha256(der).digest()
    identity_pem = certs.der_to_pem(der)
    client_key = inventory.client_key()
    csr_pem = certs.make_csr(client_key, server_name)
    csr_der = certs.check_csr(csr_pem).der
    async with pairing_channel(host, pairing_port, identity_pem) as channel:
        stub = pairing_pb2_grpc.PairingStub(channel)
        try:
            ident = await stub.GetIdentity(pairing_pb2.GetIdentityRequest(), timeout=timeout)
            if ident.identity_fingerprint != fp.hex():
                raise PermissionDenied("the satellite's identity changed between the TLS handshake and the call")
            proof = proofs.client_proof(key, fp, csr_der, ident.pairing_challenge)
            answer = await stub.Pair(
                pairing_pb2.PairRequest(csr_pem=csr_pem.decode(), challenge=ident.pairing_challenge, proof=proof),
                timeout=timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "pairing failed") from None
    cert_pem = answer.client_certificate_pem.encode()
    expected = proofs.satellite_proof(key, fp, csr_der, ident.pairing_challenge, certs.cert_der(cert_pem))
    if not proofs.proofs_equal(expected, answer.satellite_proof) or not certs.issued_by(cert_pem, identity_pem):
        raise PermissionDenied(
            "the satellite's answer does not prove it knows the code: possible man in the middle; nothing was saved"
        )
    sat = Satellite(
        name=name or inventory.free_name(ident.hostname or host, host, port),
        host=host,
        port=port,
        pairing_port=pairing_port,
        fingerprint=fp.hex(),
        identity_pem=identity_pem.decode(),
        cert_pem=cert_pem.decode(),
        instance_id=answer.instance_id,
        paired_at=time.time(),
    )
    inventory.replace(sat)
    inventory.save()
    return sat


@dataclass
class Findings:
    """What satctl noticed about a satellite's state history."""

    warnings: list[str] = field(default_factory=list)
    snapshot_revert: bool = False
    clone_of: list[str] = field(default_factory=list)


def check_generation(inventory: Inventory, sat: Satellite, instance_id: str, generation: int) -> Findings:
    """Compare with what was seen before, and remember the highest generation (DESIGN §7)."""
    found = Findings()
    if sat.instance_id == instance_id and generation < sat.max_generation:
        found.snapshot_revert = True
        found.warnings.append(
            f"SNAPSHOT REVERT: {sat.name} reports state generation {generation}, but {sat.max_generation} was "
            "seen before: the VM was reverted to a snapshot (not supported); its state may be stale"
        )
    found.clone_of = sorted(
        other.name
        for other in inventory.satellites.values()
        if other.name != sat.name and other.instance_id == instance_id
    )
    if found.clone_of:
        found.warnings.append(
            f"CLONE: {sat.name} shares instance id {instance_id} with {', '.join(found.clone_of)}: "
            "one is a copy of the other"
        )
    if sat.instance_id != instance_id:
        sat.instance_id, sat.max_generation = instance_id, generation
    else:
        sat.max_generation = max(sat.max_generation, generation)
    return found


class SatelliteClient:
    """Calls on one satellite's management port."""

    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self.channel = channel
        self.timeout = timeout
        # grpc is untyped, so the stub's overload for aio channels cannot be picked by itself.
        self.pairing = cast("pairing_pb2_grpc.PairingAsyncStub", pairing_pb2_grpc.PairingStub(channel))
        self.system = cast("system_pb2_grpc.SystemAsyncStub", system_pb2_grpc.SystemStub(channel))
        self.xcc = cast("xcc_pb2_grpc.XccAsyncStub", xcc_pb2_grpc.XccStub(channel))
        self.firewall = cast("firewall_pb2_grpc.FirewallAsyncStub", firewall_pb2_grpc.FirewallStub(channel))
        self.logs = cast("logs_pb2_grpc.LogsAsyncStub", logs_pb2_grpc.LogsStub(channel))

    async def status(self) -> system_pb2.GetStatusResponse:
        return await call(self.system.GetStatus(system_pb2.GetStatusRequest(), timeout=self.timeout), "GetStatus")

    async def xcc_state(self) -> xcc_pb2.XccState:
        return await call(self.xcc.GetState(xcc_pb2.GetXccStateRequest(), timeout=self.timeout), "Xcc.GetState")

    async def xcc_control(self, verb: str, *, wait: float = 0) -> xcc_pb2.XccState:
        """start, stop or restart; `wait` is how long the satellite waits for systemd (0: its default)."""
        method = {"start": self.xcc.Start, "stop": self.xcc.Stop, "restart": self.xcc.Restart}[verb]
        request = xcc_pb2.XccControlRequest(timeout_seconds=int(wait))
        state: xcc_pb2.XccState = await call(
            # the call outlives the satellite's own wait (0: its default, 90 s), so its answer,
            # not satctl's deadline, says how the job ended
            method(request, timeout=max(self.timeout, (wait or XCC_DEFAULT_WAIT) + 10)),
            f"Xcc.{verb.capitalize()}",
        )
        return state

    async def firewall_call(self, name: str, request: object) -> firewall_pb2.FirewallState:
        """Firewall.Get/Set/Confirm/Reset with the request message given."""
        state: firewall_pb2.FirewallState = await call(
            getattr(self.firewall, name)(request, timeout=self.timeout), f"Firewall.{name}"
        )
        return state

    async def logs_list(self) -> list[logs_pb2.LogSource]:
        answer = await call(self.logs.List(logs_pb2.ListLogsRequest(), timeout=self.timeout), "Logs.List")
        return list(answer.sources)

    async def logs_stream(self, request: logs_pb2.DownloadLogRequest | None) -> AsyncIterator[logs_pb2.LogChunk]:
        """Download (a request) or SupportBundle (None); no deadline: a follow runs until cancelled."""
        call = (
            self.logs.Download(request)
            if request is not None
            else self.logs.SupportBundle(logs_pb2.SupportBundleRequest())
        )
        try:
            async for chunk in call:
                yield chunk
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "Logs.Download" if request is not None else "Logs.SupportBundle") from None
        finally:
            call.cancel()

    async def watch_events(self, since: int = 0, run: str = "") -> AsyncIterator[system_pb2.Event]:
        """System.WatchEvents after `since` of run `run` (docs/PROTOCOL.md, "Events"); no deadline.
        The stream's end is a SatbridgeError: Unauthenticated (unpaired or reset), Unavailable
        (the bridge stopped or the connection broke: resume with the last seq and run)."""
        stream = self.system.WatchEvents(system_pb2.WatchEventsRequest(since=since, run=run))
        try:
            async for event in stream:
                yield event
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "WatchEvents") from None
        finally:
            stream.cancel()

    async def unpair(self) -> pairing_pb2.UnpairResponse:
        return await call(self.pairing.Unpair(pairing_pb2.UnpairRequest(), timeout=self.timeout), "Unpair")


@asynccontextmanager
async def connect(sat: Satellite, inventory: Inventory, *, timeout: float = 15.0) -> AsyncIterator[SatelliteClient]:
    try:
        channel = management_channel(sat, inventory.client_key())
    except ValueError as exc:
        raise Unavailable(f"cannot set up TLS for {sat.name}: {exc}") from None
    async with channel:
        try:
            yield SatelliteClient(channel, timeout)
        except Unavailable:
            await explain_unreachable(sat, timeout)
            raise
        except Unauthenticated as exc:
            raise Unauthenticated(
                f"{exc}: {sat.name} no longer trusts this server's certificate (disconnected on its console, "
                "or paired with another server since); pair again to manage it"
            ) from None
