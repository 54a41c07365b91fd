"""`satbridge --serve`: two grpc.aio listeners in one event loop.

* management (mutual TLS): a client certificate signed by the identity is required by TLS,
  then the interceptor checks it against the trust store on every call;
* pairing (server-authenticated TLS): GetIdentity, Pair and health only.

Python's grpc server cannot "ask for a client certificate but not verify it", hence two.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import resource
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from satbridge import __version__
from satbridge.api.v1 import (
    firewall_pb2_grpc,
    logs_pb2_grpc,
    pairing_pb2_grpc,
    system_pb2_grpc,
    xcc_pb2_grpc,
)
from satbridge.config import StrangerLimits
from satbridge.core import events as ev
from satbridge.core.addresses import ListenAddress
from satbridge.core.firewall import BridgePort
from satbridge.errors import SatbridgeError, Unavailable
from satbridge.server.auth import GuardInterceptor, Port, contract_methods
from satbridge.server.servicers import (
    FirewallServicer,
    LogsServicer,
    PairingServicer,
    SystemServicer,
    UpdateServicer,
    XccServicer,
)
from satbridge.server.wire import add_update_servicer
from satbridge.services.events import Feeds
from satbridge.system.sdnotify import notify
from satbridge.wiring import Bridge

log = logging.getLogger(__name__)

_OPTIONS: list[tuple[str, int]] = [
    # Never share a port with another process: a second bridge must fail to start, loudly.
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]

# Descriptors the pairing port may never take: the management port's calls, the state and log
# files, D-Bus, the journal and XCC's children share them (issue 16: with none held back, 1100
# raw connections to the pairing port made the management port fail with EMFILE).
MANAGEMENT_RESERVE_FDS = 512
# Each pairing connection holds one descriptor; a floor so a tiny limit still allows pairing.
_MIN_PAIRING_CONNECTIONS = 8
# The pairing port's fixed budget (the configurable part is config.StrangerLimits).
PAIRING_STREAMS_PER_CONNECTION = 4  # GetIdentity, Pair and a health check fit; grpc's default is 2**32-1
PAIRING_CONCURRENT_CALLS = 64  # calls in flight on the whole port; more get RESOURCE_EXHAUSTED
PAIRING_MESSAGE_BYTES = 64 * 1024  # a CSR is about 1 KiB
PAIRING_METADATA_BYTES = 8 * 1024  # request headers in all
PAIRING_AGE_GRACE_SECONDS = 5.0  # after GOAWAY at max age, calls get this long to finish
PAIRING_CHALLENGE_SECONDS = 60.0  # an unused challenge's life (a Pair follows its GetIdentity at once)
# RSS the pairing port's strangers may add before all their connections are dropped (see
# BridgeServer._guard_memory), and how often it is looked at: a CONTINUATION flood adds at most
# what the LAN carries in PAIRING_MEMORY_CHECK_SECONDS on top.
PAIRING_MEMORY_BUDGET = 64 * 2**20
PAIRING_MEMORY_CHECK_SECONDS = 0.25


def pairing_connection_cap(limits: StrangerLimits, nofile: int | None = None) -> int:
    """The pairing port's connection cap: the configured one, lowered so that the descriptors
    the pairing port can hold leave MANAGEMENT_RESERVE_FDS free under RLIMIT_NOFILE (soft)."""
    if nofile is None:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if nofile == resource.RLIM_INFINITY:
        return limits.connections
    return max(_MIN_PAIRING_CONNECTIONS, min(limits.connections, nofile - MANAGEMENT_RESERVE_FDS))


# Descriptors neither port may take: state writes, D-Bus, journalctl, XCC's children (issue 16:
# a raw TCP flood of the management port took every descriptor and the paired server's open
# connection got INTERNAL "Too many open files" in fsync_dir).
OWN_FILES_RESERVE_FDS = 256
# The management port serves one paired server (and its tools): a few connections are plenty.
MANAGEMENT_CONNECTIONS = 256
# Seconds to finish the TLS handshake (with a client certificate) and the HTTP/2 preface on the
# management port; the paired server needs milliseconds, a stranger gets no longer to hold a slot.
MANAGEMENT_HANDSHAKE_SECONDS = 5.0


def management_connection_cap(pairing_cap: int, nofile: int | None = None) -> int:
    """The management port's connection cap: MANAGEMENT_CONNECTIONS, lowered so that both ports
    together leave OWN_FILES_RESERVE_FDS free under RLIMIT_NOFILE (soft)."""
    if nofile is None:
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if nofile == resource.RLIM_INFINITY:
        return MANAGEMENT_CONNECTIONS
    return max(_MIN_PAIRING_CONNECTIONS, min(MANAGEMENT_CONNECTIONS, nofile - OWN_FILES_RESERVE_FDS - pairing_cap))


def management_options(connections: int) -> list[tuple[str, int]]:
    """grpc core channel args for the management port: open to the LAN too, so a stranger who
    cannot finish the mutual-TLS handshake holds a slot for MANAGEMENT_HANDSHAKE_SECONDS at most
    and can never hold more than `connections` descriptors."""
    return [
        *_OPTIONS,
        ("grpc.max_allowed_incoming_connections", connections),
        ("grpc.server_handshake_timeout_ms", int(MANAGEMENT_HANDSHAKE_SECONDS * 1000)),
        ("grpc.max_metadata_size", PAIRING_METADATA_BYTES),
    ]


def pairing_options(limits: StrangerLimits, connections: int) -> list[tuple[str, int]]:
    """grpc core channel args for the pairing port (names from grpc's grpc_types.h)."""
    ms = 1000
    return [
        *(option for option in _OPTIONS if option[0] != "grpc.max_receive_message_length"),
        ("grpc.max_receive_message_length", PAIRING_MESSAGE_BYTES),
        ("grpc.max_send_message_length", PAIRING_MESSAGE_BYTES),
        ("grpc.max_metadata_size", PAIRING_METADATA_BYTES),
        # Beyond the cap grpc accepts and closes at once, so no descriptor waits in a queue.
        ("grpc.max_allowed_incoming_connections", connections),
        ("grpc.max_concurrent_streams", PAIRING_STREAMS_PER_CONNECTION),
        # Covers the TLS handshake *and* the client's HTTP/2 preface (measured: a TLS
        # connection that never sends the preface is closed when this runs out).
        ("grpc.server_handshake_timeout_ms", int(limits.handshake_seconds * ms)),
        ("grpc.max_connection_idle_ms", int(limits.idle_seconds * ms)),
        ("grpc.max_connection_age_ms", int(limits.max_age_seconds * ms)),
        ("grpc.max_connection_age_grace_ms", int(PAIRING_AGE_GRACE_SECONDS * ms)),
        # Keepalive enforcement: pings without calls are strikes, two strikes close the connection.
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_ping_strikes", 2),
    ]


LIVE_SERVICES = (
    "satbridge.v1.Pairing",
    "satbridge.v1.System",
    "satbridge.v1.Xcc",
    "satbridge.v1.Firewall",
    "satbridge.v1.Logs",
    "satbridge.v1.Update",
)


@dataclass
class Bound:
    management: int
    pairing: int


def _bind(server: grpc.aio.Server, address: ListenAddress, creds: grpc.ServerCredentials, what: str) -> int:
    try:
        port: int = server.add_secure_port(str(address), creds)
    except RuntimeError as exc:
        raise Unavailable(f"cannot listen on {address} ({what} port): {exc}") from None
    if not port:
        raise Unavailable(f"cannot listen on {address} ({what} port): in use or not an address here")
    return port


class BridgeServer:
    def __init__(self, bridge: Bridge, *, guard_memory: bool = True) -> None:
        """`guard_memory`: watch this process's RSS for the pairing port's budget. Only a process
        that is the bridge alone can: a test serving in-process measures the test runner."""
        self.guard_memory = guard_memory
        self.bridge = bridge
        self._servers: list[grpc.aio.Server] = []
        self.health = health_aio.HealthServicer()
        self._watcher: asyncio.Task[None] | None = None
        self._fingerprint = b""
        self.bound = Bound(0, 0)
        self.pairing_connections = 0
        self.management_connections = 0
        self._key_cert: list[tuple[bytes, bytes]] = []
        self._guard: asyncio.Task[None] | None = None
        self.recycled = 0
        self.feeds: Feeds | None = None

    async def start(self) -> Bound:
        bridge = self.bridge
        # The event feeds first: what the start itself changes (a recovered install, a firewall
        # change rolled back because it was never confirmed) is an event too.
        self.feeds = await bridge.start_feeds()
        # An install a crash interrupted is finished or rolled back before anything is served.
        try:
            recovered = await bridge.install.recover()
        except SatbridgeError as exc:
            log.error("could not recover an interrupted install: %s", exc)
        else:
            if recovered:
                log.warning("install: %s", recovered)
        config = bridge.config.server
        bound = await self._listen(config.listen, config.pairing_listen)
        await self._restore_firewall(bound)
        for server in self._servers:
            await server.start()
        for name in ("", *LIVE_SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "listening: management %s (port %d, at most %d connections), pairing %s (port %d, at most %d connections);"
            " %d RPCs in the contract",
            config.listen,
            bound.management,
            self.management_connections,
            config.pairing_listen,
            bound.pairing,
            self.pairing_connections,
            len(contract_methods()),
        )
        self.bound = bound
        bridge.events.publish(ev.BridgeLifecycle("STARTED", __version__))
        self._watcher = asyncio.get_running_loop().create_task(self._watch_identity())
        if self.guard_memory:
            self._guard = asyncio.get_running_loop().create_task(self._guard_memory())
        return bound

    async def _listen(self, listen: ListenAddress, pairing_listen: ListenAddress) -> Bound:
        """Build both servers with the identity on disk now, and bind them (not started yet)."""
        bridge = self.bridge
        identity = bridge.identity.current()
        self._fingerprint = identity.fingerprint
        key_cert = [(identity.key_pem, identity.cert_pem)]
        trusted = bridge.pairing.is_trusted
        servicer_names = [*(name for name in LIVE_SERVICES), reflection.SERVICE_NAME, "grpc.health.v1.Health"]

        limits = bridge.config.server.pairing_limits
        cap = pairing_connection_cap(limits)
        self.pairing_connections = cap
        self.management_connections = management_connection_cap(cap)
        mgmt = grpc.aio.server(
            interceptors=[GuardInterceptor(Port.MANAGEMENT, trusted)],
            options=management_options(self.management_connections),
        )
        pairing_pb2_grpc.add_PairingServicer_to_server(PairingServicer(bridge, issues_challenges=False), mgmt)
        system_pb2_grpc.add_SystemServicer_to_server(SystemServicer(bridge), mgmt)
        xcc_pb2_grpc.add_XccServicer_to_server(XccServicer(bridge), mgmt)
        firewall_pb2_grpc.add_FirewallServicer_to_server(FirewallServicer(bridge), mgmt)
        logs_pb2_grpc.add_LogsServicer_to_server(LogsServicer(bridge), mgmt)
        add_update_servicer(UpdateServicer(bridge), mgmt)  # Upload's data is not copied (wire.py)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, mgmt)
        reflection.enable_server_reflection(servicer_names, mgmt)
        mgmt_creds = grpc.ssl_server_credentials(
            key_cert, root_certificates=identity.cert_pem, require_client_auth=True
        )

        pair = self._pairing_server(key_cert)
        bound = Bound(
            management=_bind(mgmt, listen, mgmt_creds, "management"),
            pairing=_bind(pair, pairing_listen, grpc.ssl_server_credentials(key_cert), "pairing"),
        )
        self._servers = [mgmt, pair]
        self._key_cert = key_cert
        self.pairing_servicer.local_port = bound.pairing
        return bound

    def _pairing_server(self, key_cert: list[tuple[bytes, bytes]]) -> grpc.aio.Server:
        """The pairing port's server (not bound yet)."""
        bridge = self.bridge
        limits = bridge.config.server.pairing_limits
        pair = grpc.aio.server(
            interceptors=[GuardInterceptor(Port.PAIRING, bridge.pairing.is_trusted)],
            options=pairing_options(limits, self.pairing_connections),
            maximum_concurrent_rpcs=PAIRING_CONCURRENT_CALLS,
        )
        # A challenge dies with its connection (socket inode gone) or unused after
        # PAIRING_CHALLENGE_SECONDS, whichever comes first.
        self.pairing_servicer = PairingServicer(bridge, issues_challenges=True, challenge_ttl=PAIRING_CHALLENGE_SECONDS)
        self.pairing_servicer.local_port = self.bound.pairing
        pairing_pb2_grpc.add_PairingServicer_to_server(self.pairing_servicer, pair)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, pair)
        return pair

    async def recycle_pairing(self, why: str) -> None:
        """Drop every connection of the pairing port at once and listen again on the same port:
        what grpc core holds for them (e.g. a header block that never ends) goes with them."""
        if len(self._servers) != 2:
            return
        mgmt, old = self._servers
        await old.stop(0)
        _trim()
        pair = self._pairing_server(self._key_cert)
        host = self.bridge.config.server.pairing_listen.host
        _bind(pair, ListenAddress(host, self.bound.pairing), grpc.ssl_server_credentials(self._key_cert), "pairing")
        await pair.start()
        self._servers = [mgmt, pair]
        self.recycled += 1
        log.warning("pairing port: every connection dropped (%s)", why)
        with contextlib.suppress(SatbridgeError, OSError):
            self.bridge.pairing.audit.record("pairing-port-recycled", reason=why)

    async def _guard_memory(self, every: float = PAIRING_MEMORY_CHECK_SECONDS) -> None:
        """The pairing port's memory budget. grpc core 1.85 applies the metadata limit per
        HEADERS/CONTINUATION frame, not per header block, so a block that never ends (a
        CONTINUATION flood) grows without bound on one connection and no channel arg stops it.
        When RSS rises PAIRING_MEMORY_BUDGET above its low-water mark, the pairing port's
        connections are all dropped (the management port's are not)."""
        low = _rss()
        while True:
            await asyncio.sleep(every)
            now = _rss()
            if now - low > PAIRING_MEMORY_BUDGET:
                await self.recycle_pairing(f"memory {low >> 20} -> {now >> 20} MiB")
                now = _rss()
            low = min(low, now) if now - low <= PAIRING_MEMORY_BUDGET else now

    async def _watch_identity(self, every: float = 1.0) -> None:
        """A factory reset (from the console, another process) makes a new identity: listen
        again with it, so no client pins the old one, and open a pairing window."""
        while True:
            await asyncio.sleep(every)
            try:
                fingerprint = self.bridge.identity.current().fingerprint
            except SatbridgeError:
                continue  # between the reset's steps
            if fingerprint == self._fingerprint:
                continue
            log.warning("the satellite identity changed (factory reset): listening again with the new one")
            old = self._servers
            await asyncio.gather(*(server.stop(1.0) for server in old))
            host = self.bridge.config.server
            await self._listen(
                ListenAddress(host.listen.host, self.bound.management),
                ListenAddress(host.pairing_listen.host, self.bound.pairing),
            )
            for server in self._servers:
                await server.start()
            await asyncio.to_thread(self.bridge.pairing.auto_open)

    async def _restore_firewall(self, bound: Bound) -> None:
        """Put the last confirmed rule set in force, with the ports really bound. A failure is
        logged, never fatal: the management port must stay reachable to fix it."""
        firewall = self.bridge.firewall
        srv = self.bridge.config.server
        firewall.bridge_ports = (
            BridgePort(bound.management, srv.management_per_source),
            BridgePort(bound.pairing, srv.pairing_per_source),
        )
        try:
            changed = await firewall.restore()
        except SatbridgeError as exc:
            log.error("could not apply the firewall at start: %s", exc)
            return
        if changed:
            log.info("firewall applied at start (%s)", ", ".join(changed))
        for warning in (await firewall.get()).warnings:
            log.warning("firewall: %s", warning)

    async def stop(self, grace: float | None = None) -> None:
        for task in (self._watcher, self._guard):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._watcher = self._guard = None
        # Subscribers get STOPPING, then their streams end UNAVAILABLE (before the grace period).
        self.bridge.events.publish(ev.BridgeLifecycle("STOPPING", __version__))
        self.bridge.events.close()
        if self.feeds is not None:
            await self.feeds.stop()
            self.feeds = None
        await self.health.enter_graceful_shutdown()
        await asyncio.gather(*(s.stop(grace) for s in self._servers))
        self._servers = []


# Seconds between giving freed heap back to the kernel. The unit's MALLOC_TRIM_THRESHOLD_ (512
# MiB, for fast uploads) means glibc never does it by itself: after a flood of the pairing
# port, RSS stayed 12 MiB above idle (measured, tests/server/test_pairing_flood.py).
TRIM_EVERY_SECONDS = 10.0


def _trim() -> None:
    """Give freed heap back to the kernel (glibc only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _rss() -> int:
    """This process's resident set, in bytes (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


async def _trim_memory() -> None:
    """malloc_trim(0) now and then: a few ms, on the event loop's thread (glibc only)."""
    while True:
        await asyncio.sleep(TRIM_EVERY_SECONDS)
        _trim()


async def _watchdog() -> None:
    """With WatchdogSec= set, systemd expects a WATCHDOG=1 at least every WATCHDOG_USEC: ping
    from the event loop, so a blocked loop is what gets the service restarted."""
    usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
    if usec <= 0:
        return
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(usec / 2e6)


async def serve(bridge: Bridge) -> int:
    """Run until SIGTERM or SIGINT; then finish running calls within the grace period."""
    opened = await asyncio.to_thread(bridge.pairing.auto_open)
    if opened:
        log.info(
            "unpaired: a pairing window is open for %d minutes; `satbridge pair-window show` shows its code",
            bridge.config.pairing.window_minutes,
        )
    server = BridgeServer(bridge)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    notify("READY=1\nSTATUS=serving")
    watchdog = loop.create_task(_watchdog())
    trim = loop.create_task(_trim_memory())
    await stop.wait()
    watchdog.cancel()
    trim.cancel()
    log.info("stopping")
    notify("STOPPING=1")
    await server.stop(bridge.config.server.grace_seconds)
    await bridge.aclose()
    return 0
