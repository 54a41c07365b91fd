"""State files: atomic writes, fcntl locks, and the Store adapter over a directory."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from satbridge.errors import Aborted, Internal, ResourceExhausted


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write `data` to `path` so a reader sees the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)  # the umask must not widen or narrow it
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == 28:  # ENOSPC
            raise ResourceExhausted(f"no space left to write {path}") from exc
        raise Internal(f"cannot write {path}: {exc.strerror}") from exc
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ConfigDir:
    """The ConfigFiles port over a directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read_text(self, name: str) -> str | None:
        try:
            return (self.path / name).read_text()
        except FileNotFoundError:
            return None


class OwnedDirectory:
    """The Removable port: a directory removed with all it holds (a factory reset)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def remove(self) -> bool:
        if not self.path.exists():
            return False
        shutil.rmtree(self.path)
        return True


class DirStore:
    """The Store port over one directory (the state directory)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._thread_lock = threading.Lock()

    def _path(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad state file name {name!r}")
        return self.directory / name

    def read(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes, *, private: bool = False) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self._path(name), data, mode=0o600 if private else 0o644)

    def remove(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return
        fsync_dir(self.directory)

    def version(self, name: str) -> Hashable:
        try:
            st = self._path(name).stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes (flock) and threads; not re-entrant."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._thread_lock:
            fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing drops the flock


class FileLocks:
    """The Locks port: flock on files in one directory, polled so the event loop never blocks
    and a caller that gives up holds nothing."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @asynccontextmanager
    async def hold(self, name: str, *, timeout: float) -> AsyncIterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory / f".{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise Aborted(f"another {name} operation is still running; try again") from None
                    await asyncio.sleep(0.05)
            yield
        finally:
            os.close(fd)
