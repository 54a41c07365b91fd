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
