"""In-memory fakes of the ports, for fast unit tests of services (never of adapters)."""

from __future__ import annotations

import json
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from satbridge.core.status import Address, DiskUsage, MemoryUsage
from satbridge.errors import FailedPrecondition


class MemStore:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.private: set[str] = set()
        self.writes = 0
        self._lock = threading.Lock()
        self.locked = False

    def read(self, name: str, *, limit: int = 0, fix: str = "") -> bytes | None:
        return self.files.get(name)

    def read_json(self, name, parse, *, rebuild=True, fix=""):
        raw = self.files.get(name)
        if raw is None:
            return None
        try:
            return parse(json.loads(raw))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            if not rebuild:
                raise FailedPrecondition(f"{name} is damaged; {fix}") from None
            self.files[f"{name}.damaged"] = self.files.pop(name)
            return None

    def write(self, name: str, data: bytes, *, private: bool = False) -> None:
        assert self.locked, f"{name} written without the store lock"
        self.files[name] = data
        self.writes += 1
        (self.private.add if private else self.private.discard)(name)

    def remove(self, name: str) -> None:
        self.files.pop(name, None)
        self.writes += 1

    def version(self, name: str) -> Hashable:
        data = self.files.get(name)
        return None if data is None else (id(data), len(data))

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._lock:
            self.locked = True
            try:
                yield
            finally:
                self.locked = False


class ListAudit:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, str | int]]] = []

    def record(self, event: str, **details: str | int) -> None:
        self.events.append((event, details))

    def names(self) -> list[str]:
        return [e for e, _ in self.events]


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeHost:
    def hostname(self) -> str:
        return "sat-test"

    def addresses(self) -> list[Address]:
        return [Address("eth0", "192.0.2.10", 24)]

    def uptime_seconds(self) -> float:
        return 42.0

    def disk(self) -> DiskUsage:
        return DiskUsage("/var/lib/satbridge", 10 * 2**30, 5 * 2**30)

    def memory(self) -> MemoryUsage:
        return MemoryUsage(2 * 2**30, 2**30)

    def boot_id(self) -> str:
        return "boot-1"


class CountingEntropy:
    """Deterministic 'random' bytes: each call returns a new, distinct value."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, n: int) -> bytes:
        self.calls += 1
        return (self.calls.to_bytes(4, "big") * n)[:n]
