"""The audit log: one JSON object a line, appended and fsynced, never rewritten."""

from __future__ import annotations

import json
import logging
import os
import stat
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
    bridge's own and the console's alike. A log replaced or truncated is read from its start."""

    MAX_READ = 1 << 20  # bytes per read; the rest comes at the next one
    MAX_LINE = 1 << 20  # an entry is a few hundred bytes: a longer "line" is skipped up to its newline

    def __init__(self, path: Path) -> None:
        self.path = path
        self._inode, self._offset = self._stat()
        self._partial = b""
        self._skipping = False  # inside a line longer than MAX_LINE: drop bytes up to its newline

    def _stat(self) -> tuple[int, int]:
        try:
            st = self.path.stat()
        except OSError:
            return 0, 0
        return st.st_ino, st.st_size

    def changed(self) -> bool:
        return self._stat() != (self._inode, self._offset)

    def _read(self) -> bytes:
        """Up to MAX_READ bytes from the offset; b"" unless the path is a regular file (a FIFO
        opened for reading would block until a writer came: O_NONBLOCK, then fstat)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError as exc:
            log.debug("audit log not readable: %s", exc)
            return b""
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                log.warning("audit log %s is not a regular file: not read", self.path)
                return b""
            return os.pread(fd, self.MAX_READ, self._offset)
        except OSError as exc:
            log.debug("audit log not readable: %s", exc)
            return b""
        finally:
            os.close(fd)

    def read_new(self) -> list[dict[str, object]]:
        inode, size = self._stat()
        if inode != self._inode or size < self._offset:
            self._inode, self._offset, self._partial, self._skipping = inode, 0, b"", False
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
