"""Staged uploads on disk: `<id>.meta.json`, `<id>.part` while it grows, `<id>.pkg` when whole.

The writer hashes and writes on one thread of its own (at most 4 chunks in flight), so the
event loop only receives; memory stays flat whatever the file size.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from satbridge.core import schema
from satbridge.errors import FailedPrecondition, ResourceExhausted
from satbridge.system.files import atomic_write, fsync_dir, load_json

IN_FLIGHT = 4


def _meta(data: Any) -> dict[str, Any]:
    """<id>.meta.json's schema: the announcement (name, version, size, sha256) and when."""
    meta = schema.obj(data, "upload announcement", required=("name", "version", "size", "sha256"))
    schema.text(meta, "name", limit=255)
    schema.text(meta, "version", limit=255)
    schema.integer(meta, "size", lo=1)
    schema.hexbytes(meta, "sha256", size=32)
    if "created" in meta:
        schema.timestamp(meta, "created")
    return meta


class UploadWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.size = os.fstat(self._fd).st_size
        self._hash = hashlib.sha256()
        self._pending: list[asyncio.Future[None]] = []

    async def start(self) -> None:
        """Hash what an earlier session already wrote (the sha256 covers the whole file)."""

        def rehash() -> None:
            with open(self.path, "rb", buffering=0) as f:
                while data := f.read(1 << 20):
                    self._hash.update(data)

        await asyncio.get_running_loop().run_in_executor(self._thread, rehash)

    def _write(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            if exc.errno == 28:
                raise ResourceExhausted("the disk is full; free space and resume the upload") from exc
            raise

    async def write(self, data: bytes | memoryview) -> None:
        self._pending.append(asyncio.get_running_loop().run_in_executor(self._thread, self._write, data))
        self.size += len(data)
        if len(self._pending) >= IN_FLIGHT:
            await self._pending.pop(0)

    async def drain(self) -> None:
        """Wait for every write, then fsync: what is on disk now is a durable resume point."""
        pending, self._pending = self._pending, []
        try:
            for future in pending:
                await future
        finally:
            await asyncio.get_running_loop().run_in_executor(self._thread, os.fsync, self._fd)

    async def close(self) -> str:
        """Drain, close; the sha256 of the whole file."""
        try:
            await self.drain()
        finally:
            os.close(self._fd)
            self._thread.shutdown(wait=False)
        return self._hash.hexdigest()


class Staging:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _p(self, upload_id: str, suffix: str) -> Path:
        return self.directory / f"{upload_id}{suffix}"

    def meta(self, upload_id: str) -> dict[str, Any] | None:
        """The announcement of `upload_id`; None when there is none or it is damaged (a new
        announcement then replaces it). Read through the one checked loader: a FIFO in its place
        is refused at once (the open never blocks the event loop), and JSON of the wrong shape is
        damage, not a KeyError later."""
        try:
            return load_json(self._p(upload_id, ".meta.json"), _meta, rebuild=False)
        except FailedPrecondition:
            return None

    def begin(self, upload_id: str, meta: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.meta(upload_id) is None:
            atomic_write(
                self._p(upload_id, ".meta.json"), json.dumps({**meta, "created": time.time()}).encode(), mode=0o600
            )

    def relabel(self, upload_id: str, name: str, version: str, *, identified: bool) -> None:
        """Set the name and version of a staged upload (`identified`: read from its manifest)."""
        meta = self.meta(upload_id)
        if meta is not None:
            meta |= {"name": name, "version": version, "identified": identified}
            atomic_write(self._p(upload_id, ".meta.json"), json.dumps(meta).encode(), mode=0o600)

    def progress(self, upload_id: str) -> int:
        if self.complete(upload_id):
            return int((self.meta(upload_id) or {}).get("size", 0))
        try:
            return self._p(upload_id, ".part").stat().st_size
        except FileNotFoundError:
            return 0

    def complete(self, upload_id: str) -> bool:
        return self._p(upload_id, ".pkg").exists()

    def package(self, upload_id: str) -> Path:
        return self._p(upload_id, ".pkg")

    def writer(self, upload_id: str) -> UploadWriter:
        return UploadWriter(self._p(upload_id, ".part"))

    def promote(self, upload_id: str) -> None:
        os.rename(self._p(upload_id, ".part"), self._p(upload_id, ".pkg"))
        fsync_dir(self.directory)

    def discard_part(self, upload_id: str) -> None:
        self._p(upload_id, ".part").unlink(missing_ok=True)

    def remove(self, upload_id: str) -> None:
        for suffix in (".part", ".pkg", ".meta.json"):
            self._p(upload_id, suffix).unlink(missing_ok=True)

    def mark_installed(self, upload_id: str, version: str) -> None:
        """Remember the upload the last install committed (its files are gone by then)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(
            self.directory / "installed.json", json.dumps({"upload_id": upload_id, "version": version}).encode()
        )

    def installed(self) -> tuple[str, str]:
        """(upload id, version) the last install committed; ("", "") when none or unreadable."""
        try:
            data = load_json(self.directory / "installed.json", lambda d: schema.obj(d, "installed"), rebuild=False)
        except FailedPrecondition:
            return "", ""
        if data is None:
            return "", ""
        return str(data.get("upload_id", "")), str(data.get("version", ""))

    def staged(self) -> list[dict[str, Any]]:
        found = []
        for meta_path in sorted(self.directory.glob("*.meta.json")) if self.directory.is_dir() else []:
            upload_id = meta_path.name.removesuffix(".meta.json")
            meta = self.meta(upload_id)
            if meta and self.complete(upload_id):
                found.append({**meta, "upload_id": upload_id})
        return found

    def collect_stale(self, max_age: float) -> list[str]:
        """Remove partial uploads untouched for max_age seconds."""
        removed: list[str] = []
        if not self.directory.is_dir():
            return removed
        now = time.time()
        for part in self.directory.glob("*.part"):
            try:
                age = now - part.stat().st_mtime
            except FileNotFoundError:
                continue  # promoted or removed by an upload finishing meanwhile
            if age > max_age:
                upload_id = part.name.removesuffix(".part")
                self.remove(upload_id)
                removed.append(upload_id)
        return removed

    def evict_oldest(self, keep: int, protect: set[str], fresh_seconds: float = 60.0) -> list[str]:
        """Remove the oldest uploads, whole or partial, until at most `keep` are left. Never one
        in `protect` (being received), nor one announced in the last `fresh_seconds` that has
        not sent a byte yet (its client is about to stream it)."""
        removed = self.evictable(keep, protect, fresh_seconds)
        for upload_id in removed:
            self.remove(upload_id)
        return removed

    def evictable(self, keep: int, protect: set[str], fresh_seconds: float = 60.0) -> list[str]:
        """The uploads evict_oldest would remove, oldest first, without removing them (a scan of
        the small announcement files: the caller removes the big ones off its event loop)."""
        if not self.directory.is_dir():
            return []
        now = time.time()
        uploads = []
        for meta_path in self.directory.glob("*.meta.json"):
            upload_id = meta_path.name.removesuffix(".meta.json")
            created = (self.meta(upload_id) or {}).get("created", 0)
            created = float(created) if isinstance(created, (int, float)) else 0.0
            started = self._p(upload_id, ".part").exists() or self.complete(upload_id)
            uploads.append((created, upload_id, started or now - created > fresh_seconds))
        uploads.sort()
        removed: list[str] = []
        excess = len(uploads) - keep
        for _, upload_id, evictable in uploads:
            if len(removed) >= excess:
                break
            if evictable and upload_id not in protect:
                removed.append(upload_id)
        return removed

    def free_bytes(self) -> int:
        path = self.directory
        while not path.exists():
            path = path.parent
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize
