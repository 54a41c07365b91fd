"""In-process adapters for --sandbox mode: the product without root, systemd or NetworkManager.

Not test doubles: `make run` and first-time users run on them. They keep their state in files
under the root, with the same semantics as the real adapters (the network one even rolls an
unconfirmed change back when its time is up, as NetworkManager would).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from satbridge.core import schema
from satbridge.core.network import NetworkState, StaticIPv4
from satbridge.errors import FailedPrecondition, NotFound
from satbridge.system.files import DamageHook, atomic_write, load_json

_DHCP = {"addresses": ["198.51.100.100/24"], "gateway": "198.51.100.1", "dns": ["198.51.100.53"], "search": []}


def _parse(data: Any) -> dict[str, object]:
    """sandbox-network.json: {"current": {...}, "hostname": str, "pending": {...} | null}."""
    data = schema.obj(data, "sandbox network", required=("current", "hostname"))
    _settings(data["current"])
    schema.text(data, "hostname", limit=255)
    pending = data.get("pending")
    if pending is not None:
        pending = schema.obj(pending, "pending", required=("deadline", "checkpoint", "previous"))
        schema.timestamp(pending, "deadline")
        schema.text(pending, "checkpoint", limit=255)
        _settings(pending["previous"])
    return dict(data)


def _settings(data: Any) -> None:
    data = schema.obj(data, "settings", required=("method", "gateway", "addresses", "dns", "search"))
    for key in ("method", "gateway"):
        schema.text(data, key, limit=255)
    for key in ("addresses", "dns", "search"):
        schema.strings(data, key)


class NoWatch:
    """A subscription to nothing (services.events.Watching): always alive, nothing to stop."""

    def alive(self) -> bool:
        return True

    async def __call__(self) -> None:
        return None


class SandboxNetwork:
    """The Network port over a JSON file: one pretend wired device, sandbox0, and a DHCP
    server that always offers 198.51.100.100/24."""

    def __init__(self, path: Path, *, on_damaged: DamageHook | None = None, repair: bool = True) -> None:
        self.path = path
        self.on_damaged = on_damaged
        self.repair = repair  # False for a read-only command: damage is reported, not moved

    async def watch_checkpoints(self, on_change: Callable[[], None]) -> NoWatch:
        """No daemon, no signals: a pending sandbox change ends by its deadline (pending())."""
        return NoWatch()

    def _load(self) -> dict[str, object]:
        data = load_json(self.path, _parse, repair=self.repair, on_damaged=self.on_damaged)
        if data is None:
            data = {"current": {"method": "auto", **_DHCP}, "hostname": "satellite"}
        pending = data.get("pending")
        if isinstance(pending, dict) and float(pending["deadline"]) <= time.time():
            data["current"], data["pending"] = pending["previous"], None  # not confirmed: rolled back
        return data

    def _save(self, data: dict[str, object]) -> None:
        atomic_write(self.path, json.dumps(data, indent=1).encode())

    async def apply(self, static: StaticIPv4 | None, *, confirm_timeout: int) -> str:
        data = self._load()
        if static is None:
            config: dict[str, object] = {"method": "auto", **_DHCP}
        else:
            config = {
                "method": "manual",
                "addresses": [str(static.address)],
                "gateway": str(static.gateway or ""),
                "dns": [str(d) for d in static.dns],
                "search": list(static.search),
            }
        checkpoint = ""
        if confirm_timeout:
            checkpoint = f"sandbox-checkpoint-{time.time_ns()}"
            data["pending"] = {
                "checkpoint": checkpoint,
                "deadline": time.time() + confirm_timeout,
                "previous": data["current"],
            }
        data["current"] = config
        self._save(data)
        return checkpoint

    async def rollback_deadline(self, checkpoint: str) -> float:
        pending = self._load().get("pending")
        if not isinstance(pending, dict) or pending["checkpoint"] != checkpoint:
            raise NotFound("the change was already rolled back")
        return float(pending["deadline"])

    async def confirm(self, checkpoint: str) -> None:
        data = self._load()
        pending = data.get("pending")
        if not isinstance(pending, dict) or pending["checkpoint"] != checkpoint:
            raise FailedPrecondition("nothing to confirm: the change was already rolled back")
        data["pending"] = None
        self._save(data)

    async def state(self) -> NetworkState:
        data = self._load()
        c = data["current"]
        assert isinstance(c, dict)
        dhcp = (
            {"ip_address": c["addresses"][0].split("/")[0], "dhcp_lease_time": "3600"} if c["method"] == "auto" else {}
        )
        return NetworkState(
            "sandbox0",
            str(c["method"]),
            tuple(c["addresses"]),
            str(c["gateway"]),
            tuple(c["dns"]),
            tuple(c["search"]),
            dhcp,
            str(data["hostname"]),
        )

    async def set_hostname(self, name: str) -> None:
        data = self._load()
        data["hostname"] = name
        self._save(data)

    async def close(self) -> None:
        return None
