"""Configuration: frozen dataclasses from a TOML file, the environment and the command line.

Every path hangs off one root (`--root`, default `/`), so a test or the sandbox runs the real
code under a temporary directory. Errors name the key (`server.listen: ...`).
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from satbridge.core.addresses import ListenAddress, parse_listen
from satbridge.errors import ConfigError, InvalidArgument


@dataclass(frozen=True)
class Paths:
    """Where everything lives, all under `root`."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "etc" / "satbridge"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "satbridge.toml"

    @property
    def state_dir(self) -> Path:
        return self.root / "var" / "lib" / "satbridge"

    @property
    def bridge_log_dir(self) -> Path:
        return self.root / "var" / "log" / "satbridge"

    @property
    def audit_log(self) -> Path:
        return self.bridge_log_dir / "audit.log"

    @property
    def xcc_dir(self) -> Path:
        return self.root / "opt" / "xcc"

    @property
    def xcc_log_dir(self) -> Path:
        return self.root / "var" / "log" / "xcc"


@dataclass(frozen=True)
class StrangerLimits:
    """What unauthenticated peers may hold on the pairing port, all of them together.

    The pairing port serves anyone on the LAN, so every resource a peer can hold there has a
    bound and a deadline (issue 16); the management port has none of these and keeps the rest.
    """

    # Open connections on the pairing port, in all; more are accepted and closed at once. The
    # bridge lowers it further to fit its descriptor limit (server/app.py::pairing_connection_cap).
    connections: int = 128
    # Seconds to finish the TLS handshake and send the HTTP/2 preface (SETTINGS).
    handshake_seconds: float = 10.0
    # Seconds a connection may stay without a call before it is closed (GOAWAY).
    idle_seconds: float = 30.0
    # Seconds any connection may live, calls or not (then GOAWAY and a 5 s grace): a stream
    # that sends headers and nothing else dies with its connection.
    max_age_seconds: float = 120.0


@dataclass(frozen=True)
class ServerConfig:
    listen: ListenAddress = field(default_factory=lambda: ListenAddress("::", 50051))
    pairing_listen: ListenAddress = field(default_factory=lambda: ListenAddress("::", 50052))
    # Seconds a SIGTERM waits for running calls before cancelling them.
    grace_seconds: float = 5.0
    pairing_limits: StrangerLimits = field(default_factory=StrangerLimits)
    # Connections one source (an IPv4 address, an IPv6 /64) may hold open at once on each port,
    # enforced by the kernel in the bridge's firewall chain (a TCP reset past it), so that no
    # single host can take every connection grpc accepts (issue 16). Well below each port's cap.
    pairing_per_source: int = 16
    management_per_source: int = 32


@dataclass(frozen=True)
class PairingConfig:
    window_minutes: int = 15
    # Wrong codes one source (an IPv4 address, an IPv6 /64) may try per window before it is
    # locked out until the window closes; the window stays open for everyone else.
    max_attempts: int = 5
    # Wrong codes from all sources together that close the window (a distributed guess).
    max_failures: int = 50
    # Open a window at start while unpaired, so a fresh satellite is ready to commission.
    auto_open: bool = True


@dataclass(frozen=True)
class Config:
    paths: Paths
    server: ServerConfig = field(default_factory=ServerConfig)
    pairing: PairingConfig = field(default_factory=PairingConfig)
    # D-Bus address of the system bus ("" = the standard one); a lab points it at a container's.
    dbus_address: str = ""
    # The wired device the bridge manages ("" = the first one NetworkManager knows).
    network_interface: str = ""
    # Journal units offered as logs, and where the journal is read ("" = the system's).
    journal_units: tuple[str, ...] = ("xcc.service", "satbridge.service")
    journal_directory: str = ""
    # Updates: unsigned packages only for development; how long XCC must stay healthy.
    allow_unsigned: bool = False
    health_gate_seconds: float = 5.0
    max_package_mib: int = 1024
    log_level: str = "info"
    sandbox: bool = False


_LOG_LEVELS = ("debug", "info", "warning", "error")


def _section(data: Mapping[str, Any], name: str, known: set[str]) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError("expected a table", field=name)
    for key in value:
        if key not in known:
            raise ConfigError(f"unknown key (known: {', '.join(sorted(known))})", field=f"{name}.{key}")
    return value


def _int(value: object, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"expected an integer, got {value!r}", field=key)
    if not low <= value <= high:
        raise ConfigError(f"must be between {low} and {high}, got {value}", field=key)
    return value


def _listen(value: object, key: str) -> ListenAddress:
    if not isinstance(value, str):
        raise ConfigError(f"expected a string HOST:PORT, got {value!r}", field=key)
    try:
        return parse_listen(value, field=key)
    except InvalidArgument as exc:
        raise ConfigError(exc.message, field=key) from None


# [server] key -> (StrangerLimits field, lowest, highest)
_LIMIT_KEYS: dict[str, tuple[str, float, float]] = {
    "pairing_connections": ("connections", 1, 4096),
    "pairing_handshake_seconds": ("handshake_seconds", 0.5, 120),
    "pairing_idle_seconds": ("idle_seconds", 1, 3600),
    "pairing_max_age_seconds": ("max_age_seconds", 1, 3600),
}


def _limits(srv: Mapping[str, Any]) -> StrangerLimits:
    values: dict[str, Any] = {}
    for key, (name, low, high) in _LIMIT_KEYS.items():
        if key not in srv:
            continue
        value = srv[key]
        if name == "connections":
            values[name] = _int(value, f"server.{key}", int(low), int(high))
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ConfigError(f"expected seconds between {low:g} and {high:g}, got {value!r}", field=f"server.{key}")
        values[name] = float(value)
    return StrangerLimits(**values)


# [server] key -> (ServerConfig field, highest). The management port's grpc cap is 256
# connections (server/app.py::MANAGEMENT_CONNECTIONS); the pairing port's is pairing_connections.
_PER_SOURCE_KEYS: dict[str, tuple[str, int]] = {
    "pairing_connections_per_source": ("pairing_per_source", 1024),
    "management_connections_per_source": ("management_per_source", 128),
}


def _per_source(server: ServerConfig, srv: Mapping[str, Any]) -> ServerConfig:
    values = {
        name: _int(srv[key], f"server.{key}", 1, high) for key, (name, high) in _PER_SOURCE_KEYS.items() if key in srv
    }
    server = replace(
        server,
        pairing_per_source=values.get("pairing_per_source", server.pairing_per_source),
        management_per_source=values.get("management_per_source", server.management_per_source),
    )
    cap = server.pairing_limits.connections
    if "pairing_connections_per_source" not in srv:  # the default follows a lowered cap
        return replace(server, pairing_per_source=max(1, min(server.pairing_per_source, cap // 2)))
    if server.pairing_per_source * 2 > cap:
        # One source holding the port's whole cap is what the share is there to prevent.
        raise ConfigError(
            f"must be at most half of server.pairing_connections ({cap}), got {server.pairing_per_source}",
            field="server.pairing_connections_per_source",
        )
    return server


def parse_config(data: Mapping[str, Any], paths: Paths) -> Config:
    """Validate a parsed TOML document; raise ConfigError naming the key."""
    top = {"server", "pairing", "log", "dbus", "network", "logs", "update"}
    for key in data:
        if key not in top:
            raise ConfigError(f"unknown table (known: {', '.join(sorted(top))})", field=key)
    srv = _section(data, "server", {"listen", "pairing_listen", "grace_seconds", *_LIMIT_KEYS, *_PER_SOURCE_KEYS})
    pair = _section(data, "pairing", {"window_minutes", "max_attempts", "max_failures", "auto_open"})
    log = _section(data, "log", {"level"})
    dbus = _section(data, "dbus", {"address"})
    address = dbus.get("address", "")
    if not isinstance(address, str) or (address and ":" not in address):
        raise ConfigError(
            f"expected a D-Bus address like unix:path=/run/dbus/system_bus_socket, got {address!r}",
            field="dbus.address",
        )
    server = ServerConfig()
    if "listen" in srv:
        server = replace(server, listen=_listen(srv["listen"], "server.listen"))
    if "pairing_listen" in srv:
        server = replace(server, pairing_listen=_listen(srv["pairing_listen"], "server.pairing_listen"))
    if "grace_seconds" in srv:
        grace = srv["grace_seconds"]
        if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace <= 300:
            raise ConfigError(f"expected seconds between 0 and 300, got {grace!r}", field="server.grace_seconds")
        server = replace(server, grace_seconds=float(grace))
    server = replace(server, pairing_limits=_limits(srv))
    server = _per_source(server, srv)
    if server.listen.port and server.listen.port == server.pairing_listen.port:
        raise ConfigError("must differ from server.listen's port", field="server.pairing_listen")
    pairing = PairingConfig()
    if "window_minutes" in pair:
        pairing = replace(pairing, window_minutes=_int(pair["window_minutes"], "pairing.window_minutes", 1, 24 * 60))
    if "max_attempts" in pair:
        pairing = replace(pairing, max_attempts=_int(pair["max_attempts"], "pairing.max_attempts", 1, 100))
    if "max_failures" in pair:
        failures = _int(pair["max_failures"], "pairing.max_failures", pairing.max_attempts, 1000)
        pairing = replace(pairing, max_failures=failures)
    elif pairing.max_failures < pairing.max_attempts:
        pairing = replace(pairing, max_failures=pairing.max_attempts)
    if "auto_open" in pair:
        if not isinstance(pair["auto_open"], bool):
            raise ConfigError(f"expected true or false, got {pair['auto_open']!r}", field="pairing.auto_open")
        pairing = replace(pairing, auto_open=pair["auto_open"])
    level = log.get("level", "info")
    if level not in _LOG_LEVELS:
        raise ConfigError(f"expected one of {', '.join(_LOG_LEVELS)}, got {level!r}", field="log.level")
    network = _section(data, "network", {"interface"})
    interface = network.get("interface", "")
    if not isinstance(interface, str) or len(interface) > 15 or any(c in interface for c in "/ \t"):
        raise ConfigError(f"expected an interface name like eth0, got {interface!r}", field="network.interface")
    logs = _section(data, "logs", {"journal_units", "journal_directory"})
    units = logs.get("journal_units", ["xcc.service", "satbridge.service"])
    if not isinstance(units, list) or not all(
        isinstance(u, str) and re.fullmatch(r"[A-Za-z0-9@._:-]+\.(service|socket|timer)", u) for u in units
    ):
        raise ConfigError(f"expected a list of unit names like xcc.service, got {units!r}", field="logs.journal_units")
    journal_dir = logs.get("journal_directory", "")
    if not isinstance(journal_dir, str):
        raise ConfigError("expected a path", field="logs.journal_directory")
    update = _section(data, "update", {"allow_unsigned", "health_gate_seconds", "max_package_mib"})
    unsigned = update.get("allow_unsigned", False)
    if not isinstance(unsigned, bool):
        raise ConfigError(f"expected true or false, got {unsigned!r}", field="update.allow_unsigned")
    gate = update.get("health_gate_seconds", 5)
    if isinstance(gate, bool) or not isinstance(gate, int | float) or not 0 < gate <= 600:
        raise ConfigError(f"expected seconds between 0 and 600, got {gate!r}", field="update.health_gate_seconds")
    max_mib = _int(update.get("max_package_mib", 1024), "update.max_package_mib", 1, 64 * 1024)
    return Config(
        paths=paths,
        server=server,
        pairing=pairing,
        log_level=level,
        dbus_address=address,
        network_interface=interface,
        journal_units=tuple(units),
        journal_directory=journal_dir,
        allow_unsigned=unsigned,
        health_gate_seconds=float(gate),
        max_package_mib=max_mib,
    )


# Environment overrides, for a unit's Environment= or a quick test: name -> (table, key).
ENV_KEYS = {
    "SATBRIDGE_LISTEN": ("server", "listen"),
    "SATBRIDGE_PAIRING_LISTEN": ("server", "pairing_listen"),
    "SATBRIDGE_LOG_LEVEL": ("log", "level"),
    "SATBRIDGE_DBUS_ADDRESS": ("dbus", "address"),
}


def _check_root(root: Path) -> None:
    """Every path hangs off the root: a file there (or in its way) would surface later as a
    NotADirectoryError traceback. A root that does not exist yet is fine (created on start)."""
    for path in (root, *root.absolute().parents):
        if path.exists():
            if not path.is_dir():
                where = "" if path == root else f" ({path} is not a directory)"
                raise ConfigError(f"{root} cannot be the root directory{where}: give a directory", field="--root")
            return
        if path.is_symlink():
            raise ConfigError(f"{root} cannot be the root directory ({path} is a dangling symlink)", field="--root")


def load_config(
    root: Path,
    *,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    sandbox: bool = False,
) -> Config:
    """Read `<root>/etc/satbridge/satbridge.toml` (absent = defaults), then the environment."""
    _check_root(root)
    paths = Paths(root.resolve())
    path = config_file or paths.config_file
    data: dict[str, Any] = {}
    try:
        # never a blocking open (a FIFO would wait for a writer), and only a regular file is read
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError(f"config file {path} is not a regular file", field="config")
            data = tomllib.loads(fh.read(CONFIG_LIMIT + 1).decode())
    except FileNotFoundError:
        if config_file is not None:
            raise ConfigError(f"config file {path} does not exist", field="config") from None
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}", field="config") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text", field="config") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", field="config") from None
    for name, (table, key) in ENV_KEYS.items():
        value = (os.environ if env is None else env).get(name)
        if value is not None:
            data.setdefault(table, {})
            if not isinstance(data[table], dict):
                raise ConfigError("expected a table", field=table)
            data[table][key] = value
    return replace(parse_config(data, paths), sandbox=sandbox)


CONFIG_LIMIT = 1 << 20
"""Bytes of a config file read at most (it is a few hundred)."""

DEFAULT_TOML = """\
# satbridge configuration. Every key is optional; these are the defaults.

[server]
# Management port: mutual TLS, paired server only.
listen = "[::]:50051"
# Pairing port: server-authenticated TLS, GetIdentity and Pair only.
pairing_listen = "[::]:50052"
grace_seconds = 5
# The pairing port's budget for strangers (README, "Trust: how pairing works").
# Connections in all (lowered to fit the descriptor limit), then seconds.
pairing_connections = 128
pairing_handshake_seconds = 10
pairing_idle_seconds = 30
pairing_max_age_seconds = 120
# Connections one source (IPv4 address, IPv6 /64) may hold open at once, enforced by the
# kernel (a TCP reset past it): one flooding host cannot take every connection.
pairing_connections_per_source = 16
management_connections_per_source = 32

[pairing]
window_minutes = 15
# Wrong codes per source (IPv4 address, IPv6 /64) before it is locked out for the window's
# life; wrong codes from all sources together that close the window.
max_attempts = 5
max_failures = 50
# Open a pairing window at start while the satellite is unpaired.
auto_open = true

[log]
level = "info"

[dbus]
# Empty: the system bus. A lab points it at a container's bus.
address = ""

[network]
# The wired device to manage; empty: the first one NetworkManager knows.
interface = ""

[logs]
# Journal units offered by `satctl logs` beside the files under /var/log/xcc.
journal_units = ["xcc.service", "satbridge.service"]
# Empty: the system journal.
journal_directory = ""

[update]
# Packages must be signed by a key in /etc/satbridge/keys/*.pub; true only for development.
allow_unsigned = false
# After a restart XCC must stay active (and pass its probe) this long, or it is rolled back.
health_gate_seconds = 5
max_package_mib = 1024
"""
