"""The audit log: one JSON object a line, appended and fsynced, never rewritten."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


class FileAuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, event: str, **details: str | int) -> None:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **details}
        line = (json.dumps(entry, sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, line)  # O_APPEND: one write per entry keeps lines whole across processes
            os.fsync(fd)
        finally:
            os.close(fd)
        log.info("audit: %s %s", event, details)


class AuditTail:
    """The entries appended to the audit log from now on (services.events.AuditSource): the
    bridge's own and the console's alike. The file read is held open: a log renamed away
    (rotation) is read to its end before the new one, from its start; a truncated one is read
    from its start."""

    MAX_READ = 1 << 20  # bytes per read; the rest comes at the next one
    MAX_LINE = 1 << 20  # an entry is a few hundred bytes: a longer "line" is skipped up to its newline

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        self._fd: int | None = None
        self._inode, self._offset = self._stat()
        self._partial = b""
        self._skipping = False  # inside a line longer than MAX_LINE: drop bytes up to its newline
        opened = self._open()
        if opened is not None:  # held from now: a rotation before the first read loses nothing
            self._fd, self._inode = opened
            self._offset = os.fstat(self._fd).st_size

    def _stat(self) -> tuple[int, int]:
        try:
            st = self.path.stat()
        except OSError:
            return 0, 0
        return st.st_ino, st.st_size

    def changed(self) -> bool:
        return self._stat() != (self._inode, self._offset)

    def _open(self) -> tuple[int, int] | None:
        """(fd, inode) of the log now, None unless it is a regular file (a FIFO opened for
        reading would block until a writer came: O_NONBLOCK, then fstat)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError as exc:
            log.debug("audit log not readable: %s", exc)
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            log.warning("audit log %s is not a regular file: not read", self.path)
            return None
        return fd, st.st_ino

    def close(self) -> None:
        """Let go of the file held open (the tail reads no more). Waits for a read_new running
        on another thread (a cancelled feed's), so its descriptor is never closed under it."""
        with self._lock:
            self._closed = True
            self._drop()

    def _drop(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._inode, self._offset, self._partial, self._skipping = None, 0, 0, b"", False

    def _read(self) -> bytes:
        """Up to MAX_READ new bytes: the rest of the file held open first (one renamed away
        still gets its last entries read), then the one at the path now."""
        inode, size = self._stat()
        if self._fd is not None and inode != self._inode:
            try:
                data = os.pread(self._fd, self.MAX_READ, self._offset)
            except OSError:
                data = b""
            if data:
                return data
            self._drop()  # the old one is read to its end
        if inode == self._inode and size < self._offset:
            self._offset, self._partial, self._skipping = 0, b"", False  # truncated
        if self._fd is None:
            opened = self._open()
            if opened is None:
                return b""
            fd, ino = opened
            if ino != self._inode:  # a file not read before: from its start
                self._inode, self._offset, self._partial, self._skipping = ino, 0, b"", False
            self._fd = fd
        try:
            return os.pread(self._fd, self.MAX_READ, self._offset)
        except OSError as exc:
            log.debug("audit log not readable: %s", exc)
            return b""

    def read_new(self) -> list[dict[str, object]]:
        with self._lock:
            return [] if self._closed else self._read_new()

    def _read_new(self) -> list[dict[str, object]]:
        data = self._read()
        self._offset += len(data)
        if self._skipping:
            end = data.find(b"\n")
            if end < 0:
                return []
            data, self._skipping = data[end + 1 :], False
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # an entry still being written (O_APPEND makes it rare)
        if len(self._partial) > self.MAX_LINE:
            log.warning("audit log %s: a line longer than %d bytes skipped", self.path, self.MAX_LINE)
            self._partial, self._skipping = b"", True
        entries: list[dict[str, object]] = []
        for line in lines:
            if len(line) > self.MAX_LINE:
                continue
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the limit
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries
