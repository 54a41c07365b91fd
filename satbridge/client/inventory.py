"""satctl's own state: its client key, and the satellites it has paired (inventory.json).

The key is made once per config directory (0600). Each satellite entry pins that
satellite's identity and records the highest state generation ever seen from it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from satbridge.errors import FailedPrecondition, InvalidArgument, NotFound
from satbridge.system.files import atomic_write, read_regular

MAX_INVENTORY = 16 << 20
"""Bytes inventory.json may hold (a few KiB a satellite)."""
MAX_KEY = 64 << 10
"""Bytes client.key may hold (a PEM key is well under 1 KiB)."""


@dataclass
class Satellite:
    name: str
    host: str
    port: int
    pairing_port: int
    fingerprint: str
    identity_pem: str
    cert_pem: str
    instance_id: str = ""
    max_generation: int = 0
    paired_at: float = 0.0


@dataclass
class Inventory:
    directory: Path
    satellites: dict[str, Satellite] = field(default_factory=dict)
    default: str = ""

    @property
    def path(self) -> Path:
        return self.directory / "inventory.json"

    @classmethod
    def load(cls, directory: Path) -> Inventory:
        inv = cls(directory)
        path = directory / "inventory.json"
        try:
            # the one checked reader: a FIFO or a device in its place is refused, never waited on
            raw = read_regular(path, limit=MAX_INVENTORY, field="--config-dir")
        except FileNotFoundError:
            return inv
        try:
            data = json.loads(raw)
            inv.default = str(data.get("default", ""))
            inv.satellites = {str(name): Satellite(**entry) for name, entry in data.get("satellites", {}).items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise FailedPrecondition(
                f"{path} is damaged ({type(exc).__name__}: {exc}); fix it, or move it aside and pair again"
            ) from None
        return inv

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {"default": self.default, "satellites": {n: asdict(s) for n, s in sorted(self.satellites.items())}}
        atomic_write(self.path, json.dumps(data, indent=2).encode(), mode=0o600)

    def replace(self, sat: Satellite) -> list[str]:
        """Record a new pairing. Like ssh's known_hosts, one address (host and port) has one
        entry: earlier entries for it (or of that name) are removed, and if one of them was the
        default, the new one is. Returns the names removed."""
        gone = [
            other.name
            for other in self.satellites.values()
            if other.name == sat.name or (other.host, other.port) == (sat.host, sat.port)
        ]
        for name in gone:
            del self.satellites[name]
        self.satellites[sat.name] = sat
        if not self.default or self.default in gone or self.default not in self.satellites:
            self.default = sat.name
        return [name for name in gone if name != sat.name]

    def check_name_free(self, name: str | None, host: str, port: int) -> None:
        """An explicit --name that already names a satellite at another address is refused
        (before pairing): one pairing must never silently drop another's pin and certificate."""
        other = self.satellites.get(name) if name else None
        if other is not None and (other.host, other.port) != (host, port):
            raise InvalidArgument(
                f"{name!r} already names the satellite at {other.host} port {other.port}; choose another --name"
                " (or `satctl unpair -s NAME` that one first)",
                field="--name",
            )

    def free_name(self, wanted: str, host: str, port: int) -> str:
        """The default name for a new pairing: `wanted` (the satellite's hostname), unless it
        names a satellite at another address; then the first free `wanted-2`, `wanted-3`... An
        entry for this very address keeps its name (a re-pairing after a factory reset)."""
        for sat in self.satellites.values():
            if (sat.host, sat.port) == (host, port):
                return sat.name
        name, n = wanted, 1
        while name in self.satellites:
            n += 1
            name = f"{wanted}-{n}"
        return name

    def get(self, name: str | None) -> Satellite:
        """The satellite a command is for: NAME (-s), else the default, else the only one.

        Raises NotFound (exit 6): with none paired yet that is said as such, with how to pair,
        rather than as a name '' that is not there; otherwise the names known."""
        if not self.satellites:
            raise NotFound(
                "no satellite is paired yet: open a pairing window on the satellite's console "
                "(or `satbridge pair-window open`) and run `satctl pair ADDRESS CODE`"
            )
        key = name or self.default
        if not key and len(self.satellites) == 1:
            key = next(iter(self.satellites))
        if key not in self.satellites:
            known = ", ".join(sorted(self.satellites))
            raise NotFound(f"no satellite named {key!r} (known: {known})", field="--satellite")
        return self.satellites[key]

    def client_key(self) -> bytes:
        """satctl's private key, created on first use."""
        path = self.directory / "client.key"
        try:
            return read_regular(path, limit=MAX_KEY, field="--config-dir")
        except FileNotFoundError:
            pass
        from satbridge.tls.certs import new_client_key  # cryptography only when a key is made

        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, new_client_key(), mode=0o600)
        os.chmod(self.directory, 0o700)
        return path.read_bytes()
