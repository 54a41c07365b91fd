"""The ports services are written against. system/ holds the real adapters; tests use fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from satbridge.core.firewall import Plan
from satbridge.core.logs import LogSource
from satbridge.core.network import NetworkState, StaticIPv4
from satbridge.core.package import Health, Limits, Manifest
from satbridge.core.status import Address, DiskUsage, MemoryUsage
from satbridge.core.units import UnitState

T = TypeVar("T")

Clock = Callable[[], float]
"""Seconds since the epoch (time.time)."""

Entropy = Callable[[int], bytes]
"""n random bytes (secrets.token_bytes)."""


class Store(Protocol):
    """Small state files, shared by the bridge service and the console.

    Writes are atomic (temp file, fsync, rename); `lock()` serialises read-modify-write
    sequences across processes.
    """

    def read(self, name: str, *, limit: int = ..., fix: str = ...) -> bytes | None:
        """A state file's bytes (None when missing), through a checked open that never blocks and
        reads only a regular file of at most `limit` bytes; anything else in its place is
        FailedPrecondition naming the file and `fix`."""
        ...

    def read_json(self, name: str, parse: Callable[[Any], T], *, rebuild: bool = True, fix: str = "") -> T | None:
        """The one loader of JSON state files: `parse(data)`, or None when the file is missing.

        `parse` is the file's schema (core/schema.py). A damaged file (empty, truncated, binary,
        NaN or out-of-range numbers, the wrong JSON type, or what `parse` refuses with
        ValueError/TypeError/KeyError/AttributeError/OverflowError, a directory, FIFO or symlink
        in its place) is moved aside, kept and audited, and None returned when `rebuild`
        (defaults are safe); otherwise FailedPrecondition names the file and `fix`. A store
        opened for a read-only command never moves a file: damage is FailedPrecondition naming
        it. An unreadable file (permissions) is FailedPrecondition, never damage.
        """
        ...

    def write(self, name: str, data: bytes, *, private: bool = False) -> None: ...

    def remove(self, name: str) -> None: ...

    def lock(self) -> AbstractContextManager[None]: ...

    def version(self, name: str) -> Hashable:
        """A token that changes whenever the file changes (cheap: one stat)."""
        ...


class Connections(Protocol):
    """Which TCP connection a gRPC peer string names now (system/sockets.py: /proc/net/tcp{,6}).
    A peer is (address, port); a connection is identified by its socket inode."""

    def open_to(self, local_port: int) -> dict[tuple[Any, int], int]:
        """Blocking (run it off the loop): open connections to local_port, peer -> socket inode."""
        ...

    def peer_key(self, peer: str) -> tuple[Any, int] | None:
        """grpc's "ipv4:192.0.2.7:4711" / "ipv6:[2001:db8::1]:4711" as (address, port); None
        for any other kind of peer."""
        ...


class AuditLog(Protocol):
    """Append-only record of every trust change."""

    def record(self, event: str, **details: str | int) -> None: ...


class HostInfo(Protocol):
    def hostname(self) -> str: ...

    def addresses(self) -> list[Address]: ...

    def uptime_seconds(self) -> float: ...

    def disk(self) -> DiskUsage: ...

    def memory(self) -> MemoryUsage: ...

    def boot_id(self) -> str: ...


class Units(Protocol):
    """systemd units: jobs, state, unit files (system/systemd.py over D-Bus)."""

    async def run_job(self, verb: str, unit: str, *, timeout: float) -> None:
        """verb is start, stop or restart; raises core.units.JobFailed unless the job ends "done"."""
        ...

    async def state(self, unit: str) -> UnitState: ...

    async def enable(self, unit: str) -> None: ...

    async def disable(self, unit: str) -> None: ...

    async def reload(self) -> None: ...

    def has_unit_file(self, unit: str) -> bool: ...

    async def read_unit_file(self, unit: str) -> str | None: ...

    async def write_unit_file(self, unit: str, text: str) -> None: ...

    async def remove_unit_file(self, unit: str) -> None: ...


class UnitLogs(Protocol):
    async def tail(self, unit: str, lines: int) -> list[str]:
        """The unit's last journal lines (empty when the journal cannot be read)."""
        ...


class Locks(Protocol):
    def hold(self, name: str, *, timeout: float) -> AbstractAsyncContextManager[None]:
        """An exclusive lock shared with other processes (the console); Aborted after timeout."""
        ...

    def claim(self, name: str, *, holder: str) -> AbstractContextManager[None]:
        """Held for a whole run across processes, never waited for: FailedPrecondition naming
        the holder when another run has it."""
        ...


class Firewall(Protocol):
    """The kernel's packet filter (system/iptables.py), or a file in --sandbox mode."""

    async def read(self) -> dict[str, list[str]]:
        """The bridge's rules per family ("v4", "v6"), as iptables-save prints them."""
        ...

    async def apply(self, plan: Plan, previous: Plan | None) -> list[str]:
        """Make the kernel match `plan`, all families or none; return the families changed."""
        ...

    async def warnings(self) -> list[str]:
        """What an administrator should know: nft rules beside ours, INPUT rules we did not write."""
        ...

    async def foreign_ahead(self) -> dict[str, list[str]]:
        """Per family, INPUT's rules that the bridge did not write and that sit ahead of its jump
        (matched before the bridge's rules); a change moves the jump in front of them."""
        ...


class Network(Protocol):
    """The managed wired device, through NetworkManager (system/networkmanager.py)."""

    async def apply(self, static: StaticIPv4 | None, *, confirm_timeout: int) -> str:
        """Configure static IPv4 (None: DHCP); with a timeout, inside a checkpoint whose path is returned."""
        ...

    async def rollback_deadline(self, checkpoint: str) -> float:
        """When the daemon rolls `checkpoint` back (seconds since the epoch); NotFound once done."""
        ...

    async def confirm(self, checkpoint: str) -> None: ...

    async def state(self) -> NetworkState: ...

    async def set_hostname(self, name: str) -> None: ...


class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class OpenLogPort(Protocol):
    size: int  # bytes, when it was opened

    def chunks(self, offset: int, end: int | None = None) -> AsyncIterator[bytes]:
        """[offset, end or size); Aborted if the file is truncated or rewritten meanwhile."""
        ...

    def close(self) -> None: ...


class LogFilesPort(Protocol):
    def list(self) -> list[LogSource]: ...

    async def open(self, prefix: str, relative: str) -> OpenLogPort:
        """The one checked open of a log file: NotFound, or PermissionDenied for anything that
        is not a regular file beneath its root."""
        ...

    def follow(self, prefix: str, relative: str, offset: int) -> AsyncIterator[bytes]:
        """`tail -F` of the name from `offset`, every re-open checked as `open` is."""
        ...


class JournalPort(Protocol):
    def lines(
        self, unit: str, *, since: float | None = None, lines: int = 0, follow: bool = False
    ) -> AsyncIterator[bytes]: ...


class UploadWriterPort(Protocol):
    size: int

    async def start(self) -> None: ...

    async def write(self, data: bytes | memoryview) -> None: ...

    async def drain(self) -> None: ...

    async def close(self) -> str: ...


class StagingPort(Protocol):
    def meta(self, upload_id: str) -> dict[str, Any] | None: ...

    def begin(self, upload_id: str, meta: dict[str, Any]) -> None: ...

    def relabel(self, upload_id: str, name: str, version: str, *, identified: bool) -> None: ...

    def progress(self, upload_id: str) -> int: ...

    def complete(self, upload_id: str) -> bool: ...

    def package(self, upload_id: str) -> Path: ...

    def writer(self, upload_id: str) -> UploadWriterPort: ...

    def promote(self, upload_id: str) -> None: ...

    def discard_part(self, upload_id: str) -> None: ...

    def remove(self, upload_id: str) -> None: ...

    def mark_installed(self, upload_id: str, version: str) -> None: ...

    def installed(self) -> tuple[str, str]: ...

    def staged(self) -> list[dict[str, Any]]: ...

    def collect_stale(self, max_age: float) -> list[str]: ...

    def evict_oldest(self, keep: int, protect: set[str], fresh_seconds: float = 60.0) -> list[str]: ...

    def evictable(self, keep: int, protect: set[str], fresh_seconds: float = 60.0) -> list[str]: ...

    def free_bytes(self) -> int: ...


class ConfigFiles(Protocol):
    """The admin's files in the config directory (/etc/satbridge), read-only to the services."""

    def read_text(self, name: str) -> str | None:
        """The file's text; None when it does not exist (OSError when it cannot be read)."""
        ...

    def read_bytes(self, name: str, *, limit: int) -> bytes | None:
        """At most `limit` bytes of a regular file; None when it does not exist;
        FailedPrecondition naming the file when it is anything else or bigger."""
        ...

    def describe(self, name: str) -> str:
        """The file's full path, for messages."""
        ...


class Removable(Protocol):
    """A directory the bridge owns outright (XCC's releases, its logs, the uploads)."""

    def remove(self) -> bool:
        """Delete it and everything in it; False when it was not there."""
        ...


class ReleasesPort(Protocol):
    def current(self) -> str: ...

    def previous(self) -> str: ...

    def has(self, version: str) -> bool: ...

    def staging_dir(self, version: str) -> Path: ...

    def clear_staging(self) -> None: ...

    def promote(self, version: str) -> None: ...

    def point(self, name: str, version: str | None) -> None: ...

    def prune(self, keep: set[str]) -> list[str]: ...


class PackageFiles(Protocol):
    def read_head(self, path: Path) -> tuple[bytes, bytes]: ...

    def extract(self, path: Path, dest: Path, manifest: Manifest, limits: Limits) -> None: ...


class ProberPort(Protocol):
    async def check(self, health: Health) -> bool: ...
