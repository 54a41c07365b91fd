"""State files: atomic writes, fcntl locks, the one loader of JSON state files, and the Store
adapter over a directory."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import math
import os
import shutil
import stat
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from satbridge.errors import (
    Aborted,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    ResourceExhausted,
    SatbridgeError,
    Unavailable,
)

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


class _Damaged(Exception):
    """What is wrong with a state file that is there but is not a sound file."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e309 reads as inf
        raise ValueError(f"{text} is not a finite number")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


_SHORT_OF = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EIO})
"""Errors of the moment (descriptors, memory, the disk), not of the file: Unavailable, and the
file is never set aside for them (issue 16: a descriptor flood must not cost the state)."""


def read_state_file(path: Path, *, limit: int = MAX_STATE_FILE) -> bytes:
    """The bytes of a state file the bridge wrote, through a checked open: never blocks
    (O_NONBLOCK: a FIFO swapped in waits for no writer), never follows a symlink (O_NOFOLLOW),
    and what was opened is what is checked (fstat of the descriptor, so nothing can be swapped in
    between a check and the open): only a regular file of at most `limit` bytes is read.

    Raises FileNotFoundError when it is missing, _Damaged when something else is in its place,
    and FailedPrecondition when it cannot be read (a permission, an I/O error): that is not
    damage, and nothing is changed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Damaged("a symlink, not a regular file") from None
        if exc.errno in (errno.ENXIO, errno.EISDIR):  # a socket
            raise _Damaged("not a regular file") from None
        if exc.errno in _SHORT_OF:
            raise Unavailable(f"cannot read {path} now: {exc.strerror}; it was left as it is, try again") from None
        raise FailedPrecondition(
            f"cannot read {path}: {exc.strerror}; it was left as it is (run as root, the bridge's user)"
        ) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _Damaged("a directory in its place")
        if not stat.S_ISREG(st.st_mode):
            raise _Damaged("not a regular file (a FIFO, device or socket)")
        if st.st_size > limit:
            raise _Damaged(f"over {limit} bytes")
        data = _read_capped(fd, limit)
        if data is None:
            raise _Damaged(f"grew over {limit} bytes while read")
        return data
    except OSError as exc:
        if exc.errno in _SHORT_OF:
            raise Unavailable(f"cannot read {path} now: {exc.strerror}; it was left as it is, try again") from None
        raise FailedPrecondition(f"cannot read {path}: {exc.strerror}; it was left as it is") from None
    finally:
        os.close(fd)


def load_json(
    path: Path,
    parse: Callable[[Any], T],
    *,
    rebuild: bool = True,
    repair: bool = True,
    fix: str = "run a factory reset",
    on_damaged: DamageHook | None = None,
) -> T | None:
    """The one loader of JSON state files: `parse(json)` for a sound file, None for a missing one.

    `parse` is the file's schema (built from core/schema.py): it returns the typed value and
    refuses, with ValueError, TypeError, KeyError, AttributeError or OverflowError, any other
    shape, a missing key, a number out of its range. JSON's NaN and Infinity, and numbers too
    big for a float (1e309), are refused here for every file.

    Damage is a file that is empty, not UTF-8, not JSON, too deeply nested or over
    MAX_STATE_FILE, anything but a regular file in its place (a directory, a FIFO, a symlink),
    or JSON its schema refuses. With `rebuild` and `repair`, the file is set aside (kept beside
    it, `on_damaged` told, so it is audited) and None returned: the caller starts again from its
    defaults. Without `rebuild` (where defaults are not safe), FailedPrecondition names the file
    and `fix`, and the file stays as it is. Without `repair` (a read-only command: it never
    changes state), FailedPrecondition names the file and the file stays as it is: the bridge
    service, or the next command that writes, sets it aside.

    A file that cannot be read (EACCES: not root) is not damage: FailedPrecondition, nothing
    changed.
    """
    try:
        raw = read_state_file(path)
        if not raw.strip():
            raise _Damaged("empty")
        try:
            data = json.loads(raw.decode("utf-8"), parse_float=_finite, parse_constant=_no_constant)
            return parse(data)
        except UnicodeDecodeError:
            raise _Damaged("not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise _Damaged(f"not JSON: {exc}") from None
        except RecursionError:
            raise _Damaged("nested too deeply") from None
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise _Damaged(f"unexpected content: {type(exc).__name__}: {exc}") from None
    except FileNotFoundError:
        return None
    except _Damaged as exc:
        problem = str(exc)
    if not rebuild:
        raise FailedPrecondition(f"state file {path} is damaged ({problem}); {fix}")
    if not repair:
        raise FailedPrecondition(
            f"state file {path} is damaged ({problem}); left as it is: the bridge service sets it aside"
            f" when it next reads it (or {fix})"
        )
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
        data = _read_capped(fd, limit)
        if data is None:
            raise error(f"{path} grew over the limit of {limit} bytes while read", field=field)
        return data
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

    def __init__(self, directory: Path, *, on_damaged: DamageHook | None = None, repair: bool = True) -> None:
        self.directory = directory
        self.on_damaged = on_damaged
        self.repair = repair  # False for read-only commands: damage is reported, never moved
        self._thread_lock = threading.Lock()

    def _path(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad state file name {name!r}")
        return self.directory / name

    def read(self, name: str, *, limit: int = MAX_STATE_FILE, fix: str = "run a factory reset") -> bytes | None:
        """A state file's bytes through the checked open (read_state_file); None when missing.
        Anything else in its place (a directory, a FIFO, a symlink, too big) is
        FailedPrecondition naming the file and `fix`; nothing is changed."""
        path = self._path(name)
        try:
            return read_state_file(path, limit=limit)
        except FileNotFoundError:
            return None
        except _Damaged as exc:
            raise FailedPrecondition(f"state file {path} is damaged ({exc}); {fix}") from None

    def read_json(self, name: str, parse: Callable[[Any], T], *, rebuild: bool = True, fix: str = "") -> T | None:
        """`name` through the one loader (load_json): damaged -> set aside and None, or refused."""
        return load_json(
            self._path(name),
            parse,
            rebuild=rebuild,
            repair=self.repair,
            fix=fix or "run a factory reset",
            on_damaged=self.on_damaged,
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

    @contextmanager
    def claim(self, name: str, *, holder: str) -> Iterator[None]:
        """Exclusive for a whole run, across processes, without waiting: a second claimant
        gets FailedPrecondition naming the holder (who, since when) as the lock file says."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory / f".{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raw = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
                held = f" ({raw})" if raw else ""
                what = name.replace("-", " ")
                raise FailedPrecondition(f"a {what} is already running{held}; wait for it to finish") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"started by {holder} at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}".encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock


def _read_capped(fd: int, limit: int) -> bytes | None:
    """All of an open file, or None when it holds more than `limit` bytes (read at most one
    more: a file that grows while read, or whose size lied, never costs more memory)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(chunks)
