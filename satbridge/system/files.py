"""State files: atomic writes, fcntl locks, the one loader of JSON state files, and the Store
adapter over a directory."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from satbridge.errors import Aborted, FailedPrecondition, Internal, InvalidArgument, ResourceExhausted, SatbridgeError

log = logging.getLogger(__name__)

T = TypeVar("T")

DamageHook = Callable[[str, str, str], None]
"""Called with (file name, where it was kept, what was wrong) when a damaged file is set aside."""

MAX_STATE_FILE = 16 << 20
"""No state file the bridge writes comes near this; a bigger one is damage, not data."""


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


def set_aside(path: Path) -> Path:
    """Rename a damaged file (or a directory in its place) to `<name>.damaged-<UTC time>` beside
    it, so support can still read it and the name is free for a rebuilt one."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while kept.exists() or kept.is_symlink():
        n += 1
        kept = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    try:
        os.rename(path, kept)
    except OSError as exc:
        raise FailedPrecondition(
            f"{path} is damaged and cannot be moved aside ({exc.strerror}); remove it, or run a factory reset"
        ) from None
    fsync_dir(path.parent)
    return kept


def load_json(
    path: Path,
    parse: Callable[[Any], T],
    *,
    rebuild: bool = True,
    fix: str = "run a factory reset",
    on_damaged: DamageHook | None = None,
) -> T | None:
    """The one loader of JSON state files: `parse(json)` for a sound file, None for a missing one.

    Damage is a file that is empty, not UTF-8, not JSON, too deeply nested or over
    MAX_STATE_FILE, a directory (or anything unreadable) in its place, or JSON that `parse`
    refuses with ValueError, TypeError, KeyError or AttributeError (the wrong type or shape).
    With `rebuild`, the file is set aside (kept beside it, `on_damaged` told, so it is audited)
    and None returned: the caller starts again from its defaults. Without it (where defaults
    are not safe), FailedPrecondition names the file and `fix`, and the file stays as it is.
    """
    problem = ""
    try:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            problem = "not a regular file"
        else:
            with open(path, "rb") as f:
                raw = f.read(MAX_STATE_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        problem = f"unreadable: {exc.strerror}"
    if not problem:
        try:
            if len(raw) > MAX_STATE_FILE:
                raise ValueError(f"over {MAX_STATE_FILE >> 20} MiB")
            if not raw.strip():
                raise ValueError("empty")
            return parse(json.loads(raw.decode("utf-8")))
        except UnicodeDecodeError:
            problem = "not UTF-8 text"
        except json.JSONDecodeError as exc:
            problem = f"not JSON: {exc}"
        except RecursionError:
            problem = "nested too deeply"
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            problem = f"unexpected content: {type(exc).__name__}: {exc}"
    if not rebuild:
        raise FailedPrecondition(f"state file {path} is damaged ({problem}); {fix}")
    kept = set_aside(path)
    log.warning("state file %s was damaged (%s): kept as %s, starting again from defaults", path, problem, kept)
    if on_damaged is not None:
        on_damaged(path.name, str(kept), problem)
    return None


def read_regular(
    path: Path,
    *,
    limit: int,
    field: str | None = None,
    error: type[SatbridgeError] = InvalidArgument,
) -> bytes:
    """The bytes of a file a person named or placed (satctl's FILE, the factory file): the one
    checked reader for them.

    The open never blocks (O_NONBLOCK: a FIFO without a writer would hang a plain open), only a
    regular file is read (a FIFO, a device such as /dev/zero, a directory or a socket is refused
    before a byte is read), and at most `limit` bytes: a bigger or growing file is refused, so an
    endless one costs no memory. Symlinks are followed (the person named the path). Every
    failure is `error` (InvalidArgument unless told) naming the file, with `field`; raises
    FileNotFoundError for a missing file, so a caller can treat absence as a default.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}", field=field) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (a FIFO, device or socket)"
            raise error(f"{path} is {kind}; give a regular file", field=field)
        if st.st_size > limit:
            raise error(f"{path} has {st.st_size} bytes, over the limit of {limit}", field=field)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise error(f"{path} grew over the limit of {limit} bytes while read", field=field)
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}", field=field) from None
    finally:
        os.close(fd)


class ConfigDir:
    """The ConfigFiles port over a directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read_bytes(self, name: str, *, limit: int) -> bytes | None:
        """The file's bytes through read_regular (at most `limit`); None when it does not exist.
        Anything else that is wrong with it (a directory in its place, a FIFO, too big,
        unreadable) is FailedPrecondition naming the file: the admin's file, not the caller's."""
        try:
            return read_regular(self.path / name, limit=limit, error=FailedPrecondition)
        except FileNotFoundError:
            return None

    def describe(self, name: str) -> str:
        return str(self.path / name)

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

    def __init__(self, directory: Path, *, on_damaged: DamageHook | None = None) -> None:
        self.directory = directory
        self.on_damaged = on_damaged
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

    def read_json(self, name: str, parse: Callable[[Any], T], *, rebuild: bool = True, fix: str = "") -> T | None:
        """`name` through the one loader (load_json): damaged -> set aside and None, or refused."""
        return load_json(
            self._path(name), parse, rebuild=rebuild, fix=fix or "run a factory reset", on_damaged=self.on_damaged
        )

    def write(self, name: str, data: bytes, *, private: bool = False) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self._path(name), data, mode=0o600 if private else 0o644)

    def remove(self, name: str) -> None:
        path = self._path(name)
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)  # damage (a directory in a file's place) goes too
            else:
                path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(self.directory)

    def version(self, name: str) -> Hashable:
        try:
            st = self._path(name).stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def stamp(self) -> Hashable:
        """Changes whenever any state file is written or removed, by any process: every write
        renames a temporary file into the directory, which moves the directory's mtime."""
        try:
            st = self.directory.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)

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
