"""Log files on disk: one checked open for every read, and a follower with `tail -F`'s semantics.

Every open of a log (a download, a follow and each of its re-opens after a rotation, the bundle)
goes through `LogFiles.open`: the name is resolved beneath its root, each directory on the way is
opened relative to its parent with O_NOFOLLOW, the file itself with O_NOFOLLOW | O_NONBLOCK (a FIFO
opens at once instead of blocking until a writer comes) after an lstat says it is a regular file,
and an fstat afterwards proves it still is. It runs off the event loop. So nothing the log
directory holds (a link out, a FIFO, a device, a swap between two calls) can reach outside it or
block the bridge.

The follower wakes on inotify(7) events (through inotify_simple, the one module that imports it)
for the file it reads and the directory that holds its name, with a one-second poll behind them.
It detects what GNU tail -F detects (coreutils tail.c): a new file under the name (another
device/inode, which also covers a re-pointed symlink: the name is resolved again), and truncation.
Truncation is noticed by the bytes just before its position no longer being the ones it read, so
a file truncated and written past the position before the follower looks again is caught too.
After a truncation it first reads the rest from logrotate's copy when it finds one beside the
file (copytruncate), which tail -F does not: lines written between its last read and the copy are
not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from inotify_simple import INotify, flags  # type: ignore[import-untyped]

from satbridge.core.logs import MAX_NAME, LogSource
from satbridge.errors import Aborted, NotFound, PermissionDenied, SatbridgeError

CHUNK = 1 << 20
TAIL = 64  # bytes kept from just before the position, to notice a file rewritten under it
POLL_SECONDS = 1.0  # behind inotify: file systems without it, and a full watch table
INOTIFY_BUDGET = 16  # followers woken by inotify; more poll (fs.inotify.max_user_instances is 128)
_inotify_users = 0
NAME_MAX = 255  # bytes per path component (limits.h)
COPY_SECONDS = 60.0  # how recent a copytruncate copy must be to be looked at
COPY_CANDIDATES = 8  # at most this many files opened to find it
_DIR_EVENTS = flags.CREATE | flags.MOVED_TO | flags.MOVED_FROM | flags.DELETE | flags.ATTRIB
_FILE_EVENTS = flags.MODIFY | flags.ATTRIB | flags.MOVE_SELF | flags.DELETE_SELF


class LogFile:
    """An open log: `size` as it was when opened; `chunks()` reads it without reopening."""

    def __init__(self, name: str, fd: int, st: os.stat_result) -> None:
        self.name = name
        self.fd = fd
        self.size = st.st_size
        self.identity = (st.st_dev, st.st_ino)
        self.mtime = st.st_mtime

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    async def chunks(self, offset: int, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [offset, end) (end: the size at open), in chunks of at most CHUNK bytes.

        Raises Aborted when the file is truncated or rewritten while it is read, so a download
        never passes off part of a file, or two files spliced together, as the whole.

        Each chunk's checks and read are one call on a worker thread, and the next chunk is read
        while the caller sends this one (issue 21: two thread hand-offs per chunk, none ahead).
        """
        end = self.size if end is None else end
        if offset >= end:
            return
        loop = asyncio.get_running_loop()
        tail = b""
        ahead: asyncio.Future[bytes] | None = loop.run_in_executor(None, self._read, offset, end, tail)
        try:
            while ahead is not None:
                data = await ahead
                ahead = None
                offset += len(data)
                tail = data[-TAIL:] if len(data) >= TAIL else (tail + data)[-TAIL:]
                if offset < end:
                    ahead = loop.run_in_executor(None, self._read, offset, end, tail)
                yield data
        finally:
            if ahead is not None:  # the caller stopped: let the read finish before the fd closes
                with contextlib.suppress(Exception):
                    await ahead

    def _read(self, position: int, end: int, tail: bytes) -> bytes:
        """On a worker thread: the chunk at `position`, after checking that the file still has
        `end` bytes and still holds `tail` just before `position` (the previous chunk's last
        TAIL bytes)."""
        if os.fstat(self.fd).st_size < end:
            raise Aborted(f"{self.name} was truncated while it was sent ({position} of {end} bytes); get it again")
        if tail and os.pread(self.fd, len(tail), position - len(tail)) != tail:
            raise Aborted(f"{self.name} was rewritten while it was sent ({position} of {end} bytes); get it again")
        data = os.pread(self.fd, min(CHUNK, end - position), position)
        if not data:
            raise Aborted(f"{self.name} was truncated while it was sent ({position} of {end} bytes); get it again")
        return data


class LogFiles:
    """Files under named roots: {"xcc": /var/log/xcc, "satbridge": /var/log/satbridge}."""

    def __init__(self, roots: dict[str, Path]) -> None:
        # Resolved once, here: a log directory swapped for a link later is refused (its open
        # does not follow links), not followed to wherever it points.
        self.roots = {prefix: root.resolve() for prefix, root in roots.items()}

    def list(self) -> list[LogSource]:
        found = []
        for prefix, base in self.roots.items():
            if base.is_symlink() or not base.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = sorted(d for d in dirnames if _walkable(Path(dirpath) / d))
                for name in sorted(filenames):
                    relative = str((Path(dirpath) / name).relative_to(base))
                    # a name `logs get` would refuse is not listed (core.logs.check_name)
                    if not nameable(relative) or len(f"{prefix}/{relative}".encode()) > MAX_NAME:
                        continue
                    try:
                        st = self._stat(prefix, relative)
                    except (SatbridgeError, OSError):
                        continue
                    found.append(LogSource(f"{prefix}/{relative}", "file", st.st_size, st.st_mtime))
        return found

    def _beneath(self, prefix: str, relative: str) -> tuple[Path, tuple[str, ...]]:
        """The root and the components of the name's real path beneath it.

        Raises NotFound (no such root or file) or PermissionDenied (it leads outside the root).
        """
        base = self.roots.get(prefix)
        if base is None:
            raise NotFound(f"no log source {prefix}/{relative}")
        try:
            real = (base / relative).resolve()
        except RuntimeError:  # Python 3.11's Path.resolve on a loop of links
            raise PermissionDenied(f"{prefix}/{relative} is a loop of links") from None
        if not real.is_relative_to(base):
            raise PermissionDenied(f"{prefix}/{relative} points outside the log directory")
        parts = real.relative_to(base).parts
        if not parts:
            raise PermissionDenied(f"{prefix}/{relative} is not a regular file")
        return base, parts

    def _stat(self, prefix: str, relative: str) -> os.stat_result:
        """lstat of the name's real path, through the same walk as `open`, without opening it."""
        name = f"{prefix}/{relative}"
        base, parts = self._beneath(prefix, relative)
        dfd = _open_dirs(base, parts[:-1], name)
        try:
            st = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            raise NotFound(f"no log file {name}") from None
        finally:
            os.close(dfd)
        _check_regular(name, st)
        return st

    def open_now(self, prefix: str, relative: str) -> LogFile:
        """The one checked open (blocking; `open` runs it off the loop). See the module docstring.

        Raises NotFound (no such file), PermissionDenied (outside its root, not a regular file,
        or swapped for a link or something else while it was opened).
        """
        name = f"{prefix}/{relative}"
        base, parts = self._beneath(prefix, relative)
        dfd = _open_dirs(base, parts[:-1], name)
        try:
            before = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
            _check_regular(name, before)
            fd = os.open(
                parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=dfd
            )
        except FileNotFoundError:
            raise NotFound(f"no log file {name}") from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise PermissionDenied(f"{name} changed into a link while it was opened") from None
            raise
        finally:
            os.close(dfd)
        st = os.fstat(fd)
        try:
            if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
                raise PermissionDenied(f"{name} was replaced while it was opened")
            _check_regular(name, st)
        except PermissionDenied:
            os.close(fd)
            raise
        return LogFile(name, fd, st)

    async def open(self, prefix: str, relative: str) -> LogFile:
        return await asyncio.to_thread(self.open_now, prefix, relative)

    async def follow(self, prefix: str, relative: str, offset: int) -> AsyncIterator[bytes]:
        """Like `tail -F` on the name: new data as it is written, through rotation (the old file
        read to its end, then the new one from its start), truncation and re-pointed symlinks;
        a name that vanishes is waited for. Ends only when the consumer stops, or with
        PermissionDenied when the name turns into something that may not be read (a FIFO, a
        link out of the log directory)."""
        log = await self.open(prefix, relative)
        follower = _Follower(self, prefix, relative, log, offset)
        try:
            async for data in follower.run():
                yield data
        finally:
            follower.close()


def _walkable(path: Path) -> bool:
    """A directory `list` descends into: not a link, and a path the kernel takes (a tree deeper
    than PATH_MAX raised ENAMETOOLONG here, and `logs list` failed as a whole)."""
    try:
        return not path.is_symlink()
    except OSError:
        return False


def nameable(relative: str) -> bool:
    """Whether a file's path can be a log's name: valid UTF-8 (gRPC strings are), no control
    characters (a name is printed on terminals and in listings), each component within NAME_MAX."""
    try:
        relative.encode()
    except UnicodeEncodeError:  # undecodable bytes come in as surrogates (PEP 383)
        return False
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in relative) and check_path_length(relative)


def check_path_length(relative: str) -> bool:
    return all(len(part.encode()) <= NAME_MAX for part in relative.split("/"))


def _check_regular(name: str, st: os.stat_result) -> None:
    """A log is a regular file with one name: a hard link (st_nlink > 1) may be another name of
    a secret (the identity key, a root-only file) made where the logs are, so it is refused."""
    if not stat.S_ISREG(st.st_mode):
        raise PermissionDenied(f"{name} is not a regular file")
    if st.st_nlink > 1:
        raise PermissionDenied(f"{name} has other names (a hard link): not read")


def _open_dirs(base: Path, dirs: tuple[str, ...], name: str) -> int:
    """A descriptor of base/dirs..., each component (base too) opened without following links."""
    dfd = -1
    try:
        dfd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        for part in dirs:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            os.close(dfd)
            dfd = child
    except FileNotFoundError:
        if dfd >= 0:
            os.close(dfd)
        raise NotFound(f"no log file {name}") from None
    except OSError as exc:
        if dfd >= 0:
            os.close(dfd)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PermissionDenied(f"{name}: a directory on its path is a link or not a directory") from None
        raise
    return dfd


class _Follower:
    def __init__(self, files: LogFiles, prefix: str, relative: str, log: LogFile, offset: int) -> None:
        self.files, self.prefix, self.relative = files, prefix, relative
        self.log = log
        self.position = offset
        self.tail = b""
        self.wake = asyncio.Event()
        self.inotify: INotify | None = None
        self.file_watch = -1
        self.loop = asyncio.get_running_loop()
        global _inotify_users
        try:
            if _inotify_users >= INOTIFY_BUDGET:
                return  # inotify instances are shared with every root daemon (max_user_instances)
            self.inotify = INotify(nonblocking=True)
            _inotify_users += 1
            self.loop.add_reader(self.inotify.fd, self._on_events)
            base, parts = files._beneath(prefix, relative)
            # the directory of the name, and of the file it means (another one, when it is a link)
            self.inotify.add_watch(str((base / relative).parent), _DIR_EVENTS)
            self.inotify.add_watch(str(base.joinpath(*parts).parent), _DIR_EVENTS)
            self._watch_file()
        except (OSError, SatbridgeError):
            pass  # polling alone still follows; only slower

    def _on_events(self) -> None:
        assert self.inotify is not None
        with contextlib.suppress(OSError):
            self.inotify.read(timeout=0)
        self.wake.set()

    def _watch_file(self) -> None:
        if self.inotify is None:
            return
        if self.file_watch >= 0:
            with contextlib.suppress(OSError):
                self.inotify.rm_watch(self.file_watch)
        # the inode we hold, not whatever the name means by now
        with contextlib.suppress(OSError):
            self.file_watch = self.inotify.add_watch(f"/proc/self/fd/{self.log.fd}", _FILE_EVENTS)

    def close(self) -> None:
        global _inotify_users
        self.log.close()
        if self.inotify is not None:
            self.loop.remove_reader(self.inotify.fd)
            self.inotify.close()
            self.inotify = None
            _inotify_users -= 1

    async def _drain(self) -> AsyncIterator[bytes]:
        """Everything from the position to the current end of the open file; after a truncation
        (or a rewrite past the position), first the rest from the copy, then the file anew."""
        fd = self.log.fd
        while True:
            if self.tail:
                before = await asyncio.to_thread(os.pread, fd, len(self.tail), self.position - len(self.tail))
                if before != self.tail:  # truncated, or rewritten in place past us
                    async for data in self._from_copy():
                        yield data
                    self.position, self.tail = 0, b""
            data = await asyncio.to_thread(os.pread, fd, CHUNK, self.position)
            if not data:
                if os.fstat(fd).st_size < self.position:  # truncated since the check above
                    async for data in self._from_copy():
                        yield data
                    self.position, self.tail = 0, b""
                    continue
                return
            self.position += len(data)
            self.tail = (self.tail + data)[-TAIL:]
            yield data

    async def _from_copy(self) -> AsyncIterator[bytes]:
        """After copytruncate (logrotate(8)): what was written after our position and before the
        copy was made, read from the copy. tail -F loses those lines when it is not quick
        enough; the copy still has them."""
        copy = await asyncio.to_thread(self._find_copy)
        if copy is None:
            return
        try:
            async for data in copy.chunks(self.position):
                yield data
        except Aborted:
            pass  # the copy changed too (compressed, removed): what it gave is what there is
        finally:
            copy.close()

    def _find_copy(self) -> LogFile | None:
        """A recent regular file beside the followed one that holds, just before our position,
        the bytes we read last: the copy logrotate made. Opened through the checked open."""
        try:
            base, parts = self.files._beneath(self.prefix, self.relative)
            directory = base.joinpath(*parts[:-1])
            entries = [(e.stat(follow_symlinks=False), e.name) for e in os.scandir(directory)]
        except (OSError, SatbridgeError):
            return None
        now = time.time()
        recent = sorted(
            (
                (st.st_mtime, name)
                for st, name in entries
                if stat.S_ISREG(st.st_mode)
                and st.st_size > self.position
                and now - st.st_mtime < COPY_SECONDS
                and (st.st_dev, st.st_ino) != self.log.identity
            ),
            reverse=True,
        )
        for _, name in recent[:COPY_CANDIDATES]:
            try:
                copy = self.files.open_now(self.prefix, str(Path(*parts[:-1], name)))
            except (OSError, SatbridgeError):
                continue
            if os.pread(copy.fd, len(self.tail), self.position - len(self.tail)) == self.tail:
                return copy
            copy.close()
        return None

    async def _renamed(self) -> LogFile | None:
        """The file the name means now, if it is another one than we read; None if the same or
        gone (then we keep the old one and wait for the name to come back, as tail -F does).
        PermissionDenied when the name now means something that may not be read."""
        try:
            st = await asyncio.to_thread(self.files._stat, self.prefix, self.relative)
        except NotFound:
            return None
        if (st.st_dev, st.st_ino) == self.log.identity:
            return None
        try:
            return await self.files.open(self.prefix, self.relative)
        except NotFound:
            return None

    async def run(self) -> AsyncIterator[bytes]:
        while True:
            self.wake.clear()
            async for data in self._drain():
                yield data
            try:
                new = await self._renamed()
            except PermissionDenied:
                async for data in self._drain():  # what the old file still had, before ending
                    yield data
                raise
            if new is not None:
                async for data in self._drain():  # the rest of the old file first
                    yield data
                self.log.close()
                self.log, self.position, self.tail = new, 0, b""
                self._watch_file()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), POLL_SECONDS)


def watch_directory(directory: Path, on_change: Callable[[], None]) -> Callable[[], None] | None:
    """inotify(7) on `directory`: `on_change()` (on the running event loop's thread) when a file
    in it is written, created, moved in or out, or removed. None when inotify cannot be had (no
    instance left, no such directory): the caller polls. Returns the stop function. Used by the
    event feed for the audit log (services/events.py)."""
    loop = asyncio.get_running_loop()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        inotify = INotify(nonblocking=True)
    except OSError:
        return None
    try:
        inotify.add_watch(str(directory), _DIR_EVENTS | flags.MODIFY)
    except OSError:
        inotify.close()
        return None

    def ready() -> None:
        with contextlib.suppress(OSError, BlockingIOError):
            inotify.read(timeout=0)
        on_change()

    loop.add_reader(inotify.fd, ready)

    def stop() -> None:
        loop.remove_reader(inotify.fd)
        inotify.close()

    return stop
