"""The live servicers: convert the request, call a service, convert the answer.

Blocking work (fsync'd state files, signing) runs on a worker thread so the event loop that
serves every other call never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import grpc

from satbridge import __version__
from satbridge.api.v1 import (
    firewall_pb2,
    firewall_pb2_grpc,
    logs_pb2,
    logs_pb2_grpc,
    pairing_pb2,
    pairing_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    update_pb2,
    update_pb2_grpc,
    xcc_pb2,
    xcc_pb2_grpc,
)
from satbridge.core import events as ev
from satbridge.core.pairing import ChallengeBook, Connection
from satbridge.errors import (
    DeadlineExceeded,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    SatbridgeError,
)
from satbridge.protocol import rule_set
from satbridge.server import convert
from satbridge.server.auth import peer_fingerprint
from satbridge.server.priority import PRIORITY
from satbridge.server.wire import RawChunk
from satbridge.tls.certs import TLS_SERVER_NAME
from satbridge.wiring import Bridge

log = logging.getLogger(__name__)
_T = TypeVar("_T")


# Seconds GetIdentity or Pair may take on the bridge (a file read; signing and two fsyncs): a
# stranger's call never holds a worker thread or a call slot longer than this.
PAIRING_CALL_SECONDS = 10.0


async def _bounded(what: str, call: Awaitable[_T]) -> _T:
    try:
        return await asyncio.wait_for(call, PAIRING_CALL_SECONDS)
    except TimeoutError:
        raise DeadlineExceeded(f"{what} did not finish within {PAIRING_CALL_SECONDS:g} s on the bridge") from None


class RateLimitedAudit:
    """Strangers' refusals, audited at most once per EVERY seconds per kind (with how many were
    left out since), so a flood cannot fill the audit log."""

    EVERY = 10.0

    def __init__(self, bridge: Bridge, event: str) -> None:
        self.bridge, self.event = bridge, event
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def record(self, peer: str, reason: str) -> None:
        now = time.monotonic()
        if now - self._last.get(reason, -self.EVERY) < self.EVERY:
            self._skipped[reason] = self._skipped.get(reason, 0) + 1
            return
        self._last[reason] = now
        skipped = self._skipped.pop(reason, 0)
        log.warning("%s from %s: %s (%d more since the last)", self.event, peer, reason, skipped)
        with contextlib.suppress(SatbridgeError, OSError):
            self.bridge.pairing.audit.record(self.event, peer=peer, reason=reason, more=skipped)


class PairingServicer(pairing_pb2_grpc.PairingServicer):
    def __init__(self, bridge: Bridge, *, issues_challenges: bool, challenge_ttl: float = 30.0) -> None:
        self.bridge = bridge
        self.issues_challenges = issues_challenges
        self.challenges = ChallengeBook(ttl=challenge_ttl)
        self.local_port = 0  # the pairing port, once bound: connections are looked up by it
        self._refusals = RateLimitedAudit(bridge, "pairing-refused")

    async def _connection(self, peer: str) -> tuple[Connection, set[Connection]]:
        """This call's connection (peer, socket inode) and every open one of the pairing port.
        Only the read of /proc/net/tcp runs off the loop; the challenge book stays on it."""
        if not self.local_port:
            return (peer, None), set()
        sockets = self.bridge.connections
        key = sockets.peer_key(peer)
        for _ in range(3):  # this call's connection is open: a read that misses it is retried
            open_now = await asyncio.to_thread(sockets.open_to, self.local_port)
            inode = open_now.get(key) if key else None
            if inode is not None or key is None:
                break
        alive: set[Connection] = set()
        by_key = {f"{a}:{p}": i for (a, p), i in open_now.items()}
        for conn in self.challenges.connections():
            found = sockets.peer_key(conn[0])
            if found and by_key.get(f"{found[0]}:{found[1]}") == conn[1]:
                alive.add(conn)
        return (peer, inode), alive

    async def GetIdentity(
        self, request: pairing_pb2.GetIdentityRequest, context: grpc.aio.ServicerContext
    ) -> pairing_pb2.GetIdentityResponse:
        identity = self.bridge.identity.current()
        state = await _bounded("GetIdentity", asyncio.to_thread(self.bridge.pairing.status))
        challenge = b""
        if self.issues_challenges:
            conn, alive = await self._connection(context.peer())
            self.challenges.prune(alive)
            issued = self.challenges.issue(secrets.token_bytes(32), conn, time.monotonic())
            if issued is None:  # full: a second look, so connections missed twice in a row go
                _, alive = await self._connection(context.peer())
                self.challenges.prune(alive)
                issued = self.challenges.issue(secrets.token_bytes(32), conn, time.monotonic())
            if issued is None:
                self._refusals.record(context.peer(), "every pairing challenge slot of this address is taken")
                raise ResourceExhausted("too many pairing attempts in progress on this satellite; try again shortly")
            challenge = issued
        return pairing_pb2.GetIdentityResponse(
            bridge_version=__version__,
            identity_fingerprint=identity.fingerprint.hex(),
            identity_certificate_pem=identity.cert_pem.decode(),
            tls_server_name=TLS_SERVER_NAME,
            paired=state.paired,
            pairing_window_open=state.window_open,
            pairing_challenge=challenge,
            hostname=self.bridge.status.host.hostname(),
        )

    async def Pair(
        self, request: pairing_pb2.PairRequest, context: grpc.aio.ServicerContext
    ) -> pairing_pb2.PairResponse:
        if not request.csr_pem:
            raise InvalidArgument("required: a PEM certificate signing request", field="csr_pem")
        if len(request.challenge) != 32:
            raise InvalidArgument("must be the 32-byte challenge from GetIdentity", field="challenge")
        if len(request.proof) != 32:
            raise InvalidArgument("must be 32 bytes (HMAC-SHA256)", field="proof")
        conn, _ = await self._connection(context.peer())
        if not self.challenges.redeem(request.challenge, conn, time.monotonic()):
            self._refusals.record(context.peer(), "challenge not issued on this connection")
            raise PermissionDenied(
                "challenge not issued on this connection, already used, or expired; call GetIdentity again"
            )
        result = await _bounded(
            "Pair",
            asyncio.to_thread(
                self.bridge.pairing.pair,
                request.csr_pem.encode(),
                request.challenge,
                request.proof,
                peer=context.peer(),
            ),
        )
        return pairing_pb2.PairResponse(
            client_certificate_pem=result.client_cert_pem.decode(),
            identity_certificate_pem=result.identity_cert_pem.decode(),
            satellite_proof=result.satellite_proof,
            instance_id=result.instance_id,
        )

    async def Unpair(
        self, request: pairing_pb2.UnpairRequest, context: grpc.aio.ServicerContext
    ) -> pairing_pb2.UnpairResponse:
        done = await self.bridge.disconnect.disconnect(by="paired server (Unpair RPC)")
        if done.problem:
            log.warning("Unpair: %s", done.problem)
        return pairing_pb2.UnpairResponse(unpaired_at=convert.timestamp(time.time()))


class SystemServicer(system_pb2_grpc.SystemServicer):
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    async def WatchEvents(
        self, request: system_pb2.WatchEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[system_pb2.Event]:
        """The bus from `since` on (docs/PROTOCOL.md, "Events"). Ends UNAUTHENTICATED once the
        caller is no longer the paired server (unpair, factory reset), UNAVAILABLE when the
        bridge stops; RESOURCE_EXHAUSTED past EventBus.max_subscribers."""
        bus = self.bridge.events
        if len(request.run) > 64:
            raise InvalidArgument("at most 64 characters (an Event.run)", field="run")
        fingerprint = peer_fingerprint(context)
        subscription = bus.subscribe(request.since, request.run)

        def trusted() -> bool:  # one stat() of the trust store
            return fingerprint is not None and self.bridge.pairing.is_trusted(fingerprint)

        try:
            yield system_pb2.Event(run=bus.run, subscribed=system_pb2.Subscribed(newest_seq=bus.ring.last_seq))
            async for item in subscription.follow(trusted):
                yield convert.event(item, bus.run)
        finally:
            subscription.close()

    async def GetStatus(
        self, request: system_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> system_pb2.GetStatusResponse:
        return convert.status(await self.bridge.status.recent())


class XccServicer(xcc_pb2_grpc.XccServicer):
    """Only xcc.service: no request names a unit."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    async def _control(self, verb: str, request: xcc_pb2.XccControlRequest) -> xcc_pb2.XccState:
        try:
            return convert.xcc_state(await self.bridge.xcc.control(verb, timeout=request.timeout_seconds))
        finally:
            self.bridge.status.forget()

    async def Start(self, request: xcc_pb2.XccControlRequest, context: grpc.aio.ServicerContext) -> xcc_pb2.XccState:
        return await self._control("start", request)

    async def Stop(self, request: xcc_pb2.XccControlRequest, context: grpc.aio.ServicerContext) -> xcc_pb2.XccState:
        return await self._control("stop", request)

    async def Restart(self, request: xcc_pb2.XccControlRequest, context: grpc.aio.ServicerContext) -> xcc_pb2.XccState:
        return await self._control("restart", request)

    async def GetState(
        self, request: xcc_pb2.GetXccStateRequest, context: grpc.aio.ServicerContext
    ) -> xcc_pb2.XccState:
        return convert.xcc_state(await self.bridge.xcc.status())


class FirewallServicer(firewall_pb2_grpc.FirewallServicer):
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def _server(self, rpc: str) -> str:
        """Who calls, for the audit log: only the paired server gets past the interceptor."""
        trust = self.bridge.pairing.trust()
        return f"{trust.peer_name if trust else 'paired server'} ({rpc} RPC)"

    async def Get(
        self, request: firewall_pb2.GetFirewallRequest, context: grpc.aio.ServicerContext
    ) -> firewall_pb2.FirewallState:
        return convert.firewall_state(await self.bridge.firewall.get())

    async def Set(
        self, request: firewall_pb2.SetFirewallRequest, context: grpc.aio.ServicerContext
    ) -> firewall_pb2.FirewallState:
        rules = rule_set(request.rules)
        state = await self.bridge.firewall.set(
            rules,
            by=self._server("Set"),
            confirm_timeout=request.confirm_timeout_seconds,
            base_revision=request.base_revision,
        )
        return convert.firewall_state(state)

    async def Confirm(
        self, request: firewall_pb2.ConfirmFirewallRequest, context: grpc.aio.ServicerContext
    ) -> firewall_pb2.FirewallState:
        if not request.revision:
            raise InvalidArgument("the revision to confirm (from Set's answer)", field="revision")
        return convert.firewall_state(await self.bridge.firewall.confirm(request.revision, by=self._server("Confirm")))

    async def Reset(
        self, request: firewall_pb2.ResetFirewallRequest, context: grpc.aio.ServicerContext
    ) -> firewall_pb2.FirewallState:
        return convert.firewall_state(await self.bridge.firewall.reset(by=self._server("Reset")))


_COMPRESSION = {
    logs_pb2.DownloadLogRequest.COMPRESSION_UNSPECIFIED: "",
    logs_pb2.DownloadLogRequest.GZIP: "gzip",
    logs_pb2.DownloadLogRequest.ZSTD: "zstd",
}


class LogsServicer(logs_pb2_grpc.LogsServicer):
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    async def List(
        self, request: logs_pb2.ListLogsRequest, context: grpc.aio.ServicerContext
    ) -> logs_pb2.ListLogsResponse:
        sources = await asyncio.to_thread(self.bridge.logs.list)
        kinds = {"file": logs_pb2.LogSource.FILE, "journal": logs_pb2.LogSource.JOURNAL}
        return logs_pb2.ListLogsResponse(
            sources=[
                logs_pb2.LogSource(
                    name=s.name, size=s.size, mtime=convert.timestamp(s.mtime or None), kind=kinds[s.kind]
                )
                for s in sources
            ]
        )

    async def Download(
        self, request: logs_pb2.DownloadLogRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[logs_pb2.LogChunk]:
        if request.compression not in _COMPRESSION:
            raise InvalidArgument("choose none, GZIP or ZSTD", field="compression")
        since = request.since.ToNanoseconds() / 1e9 if request.HasField("since") else None
        chunks = self.bridge.logs.download(
            request.name,
            offset=request.offset,
            compression=_COMPRESSION[request.compression],
            follow=request.follow,
            since=since,
            lines=request.lines,
        )
        async for chunk in chunks:
            yield logs_pb2.LogChunk(offset=chunk.offset, data=chunk.data, sha256=chunk.sha256)

    async def SupportBundle(
        self, request: logs_pb2.SupportBundleRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[logs_pb2.LogChunk]:
        offset = 0
        async for data in self.bridge.logs.bundle():
            yield logs_pb2.LogChunk(offset=offset, data=data)
            offset += len(data)


class UpdateServicer(update_pb2_grpc.UpdateServicer):
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    async def BeginUpload(
        self, request: update_pb2.BeginUploadRequest, context: grpc.aio.ServicerContext
    ) -> update_pb2.BeginUploadResponse:
        begun = await self.bridge.update.begin(request.name, request.version, request.size, request.sha256)
        disposition = (
            update_pb2.BeginUploadResponse.ALREADY_PRESENT
            if begun.already_present
            else update_pb2.BeginUploadResponse.UPLOAD
        )
        return update_pb2.BeginUploadResponse(
            disposition=disposition, upload_id=begun.upload_id, resume_offset=begun.resume_offset
        )

    async def Upload(  # type: ignore[override]  # RawChunks: app.py registers wire.upload_chunk
        self, request_iterator: AsyncIterator[RawChunk], context: grpc.aio.ServicerContext
    ) -> update_pb2.UploadResponse:
        async def chunks() -> AsyncIterator[tuple[str, int, bytes | memoryview]]:
            async for chunk in request_iterator:
                yield chunk.upload_id, chunk.offset, chunk.data
                await PRIORITY.bulk(len(chunk.data))  # before asking for the next chunk (server/priority.py)

        try:
            done = await self.bridge.update.upload(chunks())
        except SatbridgeError:
            # Read (and drop) what the client is still sending, for a few seconds at most: a
            # client cut off mid-write would see grpc's "Internal error" instead of our status.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    async for _ in request_iterator:
                        pass
            raise
        return update_pb2.UploadResponse(
            upload_id=done.upload_id, size=done.size, sha256=done.sha256, complete=done.complete
        )

    async def Install(
        self, request: update_pb2.InstallRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[update_pb2.InstallEvent]:
        events = self.bridge.install.install(
            request.upload_id, allow_downgrade=request.allow_downgrade, health_gate=request.health_gate_seconds
        )
        async for event in events:
            self.bridge.events.publish(ev.InstallProgress(**dataclasses.asdict(event)))
            yield update_pb2.InstallEvent(
                phase=event.phase,  # the enum value by name
                message=event.message,
                percent=event.percent,
                version=event.version,
                reason=event.reason,
            )

    async def GetVersions(
        self, request: update_pb2.GetVersionsRequest, context: grpc.aio.ServicerContext
    ) -> update_pb2.GetVersionsResponse:
        v = await asyncio.to_thread(self.bridge.update.versions)
        return update_pb2.GetVersionsResponse(running=v.running, previous=v.previous, staged=list(v.staged))
