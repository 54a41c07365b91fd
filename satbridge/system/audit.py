"""The audit log: one JSON object a line, appended and fsynced, never rewritten."""

from __future__ import annotations

import json
import logging
import os
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

    def __init__(self, path: Path) -> None:
        self.path = path
        self._inode, self._offset = self._stat()
        self._partial = b""

    def _stat(self) -> tuple[int, int]:
        try:
            st = self.path.stat()
        except OSError:
            return 0, 0
        return st.st_ino, st.st_size

    def changed(self) -> bool:
        return self._stat() != (self._inode, self._offset)

    def read_new(self) -> list[dict[str, object]]:
        inode, size = self._stat()
        if inode != self._inode or size < self._offset:
            self._inode, self._offset, self._partial = inode, 0, b""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read(self.MAX_READ)
        except OSError as exc:
            log.debug("audit log not readable: %s", exc)
            return []
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # an entry still being written (O_APPEND makes it rare)
        entries: list[dict[str, object]] = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries
