"""The composition root: real adapters plugged into the services, for one Config.

Used by the CLI (in-process commands), the server and the tests; nothing else constructs
adapters.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from satbridge import __version__
from satbridge.config import Config
from satbridge.core import firewall as fw
from satbridge.errors import FailedPrecondition, SatbridgeError
from satbridge.services import events as ev
from satbridge.services.disconnect import DisconnectService
from satbridge.services.factory import FactoryResetService
from satbridge.services.firewall import FirewallService
from satbridge.services.identity import IdentityService
from satbridge.services.install import InstallService
from satbridge.services.logs import LogsService
from satbridge.services.network import NetworkService
from satbridge.services.pairing import PairingService
from satbridge.services.ports import Clock, Connections
from satbridge.services.state import StateService
from satbridge.services.status import StatusService
from satbridge.services.update import UpdateService
from satbridge.services.xcc import XccService
from satbridge.system.audit import AuditTail, FileAuditLog
from satbridge.system.compress import compressor
from satbridge.system.files import ConfigDir, DirStore, FileLocks, OwnedDirectory
from satbridge.system.host import LinuxHost
from satbridge.system.iptables import LAB_NETNS_ENV, IptcFirewall, SandboxFirewall
from satbridge.system.journal import JournalLogs, JournalReader
from satbridge.system.logfiles import LogFiles, watch_directory
from satbridge.system.networkmanager import NmNetwork
from satbridge.system.package import PackageIO
from satbridge.system.probe import Prober
from satbridge.system.releases import Releases
from satbridge.system.sandbox import SandboxNetwork
from satbridge.system.sockets import ProcNetTcp
from satbridge.system.staging import Staging
from satbridge.system.systemd import SystemdUnits

log = logging.getLogger(__name__)

WATCH_CHECK_SECONDS = 5.0
"""How often the event feeds look whether their D-Bus connection still stands."""


@dataclass(frozen=True)
class Bridge:
    config: Config
    identity: IdentityService
    state: StateService
    pairing: PairingService
    status: StatusService
    xcc: XccService
    disconnect: DisconnectService
    units: SystemdUnits
    firewall: FirewallService
    firewall_backend: IptcFirewall | SandboxFirewall
    network: NetworkService
    network_backend: NmNetwork | SandboxNetwork
    logs: LogsService
    update: UpdateService
    install: InstallService
    factory_reset: FactoryResetService
    events: ev.EventBus
    locks: FileLocks
    connections: Connections = field(default_factory=ProcNetTcp)

    async def start_feeds(self) -> ev.Feeds:
        """The server process's event feeds (services/events.py): the audit log from now on,
        xcc.service's PropertiesChanged, NetworkManager's checkpoints, disk and memory."""
        bus = self.events
        bus.attach(asyncio.get_running_loop())
        feeds = ev.Feeds(bus)
        audit_log = self.config.paths.audit_log
        wake = asyncio.Event()
        unwatch = watch_directory(audit_log.parent, wake.set)
        if unwatch is not None:
            stop_watch = unwatch

            async def unwatch_audit() -> None:
                stop_watch()

            feeds.on_stop(unwatch_audit)
        tail = AuditTail(audit_log)

        async def close_tail() -> None:  # after the feed's task: the log is held open till then
            await asyncio.to_thread(tail.close)

        feeds.on_stop(close_tail)
        feeds.spawn(ev.audit_feed(bus, tail, wake if unwatch else None, 1.0 if unwatch else 0.2), "audit")
        feeds.spawn(ev.resource_feed(bus, self.status.host), "resources")

        async def watch(what: str, start: Callable[[], Awaitable[ev.Watching]]) -> None:
            # The daemon may be down at the bridge's start, and its bus connection can break
            # later (dbus-daemon restarted): watch again until it answers. A look at a flag
            # every WATCH_CHECK_SECONDS, not a poll of the daemon.
            for attempt in itertools.count():
                try:
                    watching = await start()
                except SatbridgeError as exc:
                    (log.warning if attempt == 0 else log.debug)("events: cannot watch %s yet: %s", what, exc)
                    await asyncio.sleep(WATCH_CHECK_SECONDS)
                    continue
                feeds.on_stop(watching)
                while True:
                    await asyncio.sleep(WATCH_CHECK_SECONDS)
                    if not watching.alive():
                        break
                log.warning("events: the connection for %s broke; watching again", what)
                await watching()

        if self.config.dbus_address or not self.config.sandbox:  # a sandbox leaves the host's systemd alone
            feeds.spawn(watch("xcc.service", lambda: ev.start_xcc_feed(bus, self.units)), "xcc")
        feeds.spawn(
            watch(
                "NetworkManager",
                lambda: ev.start_network_feed(feeds, self.network, self.network_backend, self.locks),
            ),
            "network",
        )
        return feeds

    async def aclose(self) -> None:
        """Close what the adapters opened (D-Bus connections, the iptc thread)."""
        await self.units.close()
        await self.firewall_backend.close()
        await self.network_backend.close()


def wire(config: Config, *, clock: Clock = time.time, read_only: bool = False) -> Bridge:
    """Build the services and make sure the identity and instance id exist (unless `read_only`:
    status and show commands never create state)."""
    paths = config.paths
    audit = FileAuditLog(paths.audit_log)

    def damaged(name: str, kept_as: str, problem: str) -> None:
        audit.record("state-file-damaged", file=name, kept_as=kept_as, problem=problem[:200])

    # A read-only command never changes state: damage is reported (a warning naming the file),
    # and the service or the next command that writes sets the file aside.
    store = DirStore(paths.state_dir, on_damaged=damaged, repair=not read_only)
    host = LinuxHost(paths.state_dir)
    identity = IdentityService(store, clock, host)
    state = StateService(store, secrets.token_bytes)
    pairing = PairingService(store, audit, clock, secrets.token_bytes, identity, state, config.pairing)
    units = SystemdUnits(config.dbus_address or None, paths.root)
    locks = FileLocks(paths.state_dir)
    journal_dir = Path(config.journal_directory) if config.journal_directory else None
    releases = Releases(paths.xcc_dir)
    xcc = XccService(units, JournalLogs(journal_dir), locks, releases)
    backend: IptcFirewall | SandboxFirewall = (
        SandboxFirewall(paths.state_dir / "sandbox-firewall.json", on_damaged=damaged, repair=not read_only)
        if config.sandbox
        else IptcFirewall(paths.root, lab_netns=os.environ.get(LAB_NETNS_ENV))
    )
    srv = config.server
    ports = tuple(
        fw.BridgePort(port, share)
        for port, share in (
            (srv.listen.port, srv.management_per_source),
            (srv.pairing_listen.port, srv.pairing_per_source),
        )
        if port
    )
    config_files = ConfigDir(paths.config_dir)
    firewall = FirewallService(backend, store, locks, audit, state, clock, config_files, ports)
    net_backend: NmNetwork | SandboxNetwork = (
        SandboxNetwork(paths.state_dir / "sandbox-network.json", on_damaged=damaged, repair=not read_only)
        if config.sandbox
        else NmNetwork(config.dbus_address or None, config.network_interface)
    )
    network = NetworkService(net_backend, store, locks, audit, state, clock)
    status = StatusService(host, pairing, state, xcc, firewall, network, clock, __version__, state_stamp=store.stamp)
    files = LogFiles({"xcc": paths.xcc_log_dir, "satbridge": paths.bridge_log_dir})
    logs = LogsService(
        files, JournalReader(journal_dir), compressor, config.journal_units, status, firewall, config_files
    )
    if not read_only:
        with store.lock():
            try:
                identity.ensure()
            except FailedPrecondition as exc:
                # A damaged identity: the commands that need it say so (naming the file and the
                # fix), and a factory reset, which must work from any state, makes a new one.
                log.warning("%s", exc)
            state.ensure()
    staging = Staging(paths.state_dir / "uploads")
    install = InstallService(
        staging,
        releases,
        PackageIO(),
        units,
        Prober(),
        store,
        locks,
        audit,
        state,
        clock,
        paths.config_dir / "keys",
        allow_unsigned=config.allow_unsigned,
        health_gate=config.health_gate_seconds,
    )
    update = UpdateService(
        staging, releases, PackageIO(), max_size=config.max_package_mib << 20, pinned=install.installing
    )
    disconnect = DisconnectService(pairing, xcc)
    factory_reset = FactoryResetService(
        disconnect,
        identity,
        state,
        firewall,
        network,
        units,
        store,
        audit,
        xcc_files=[OwnedDirectory(d) for d in (paths.xcc_dir, paths.xcc_log_dir, staging.directory)],
        locks=locks,
    )
    return Bridge(
        config,
        identity,
        state,
        pairing,
        status,
        xcc,
        disconnect,
        units,
        firewall,
        backend,
        network,
        net_backend,
        logs,
        update,
        install,
        factory_reset,
        ev.EventBus(clock, ev.cached_generation(state, store.stamp)),
        locks,
    )
