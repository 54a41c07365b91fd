"""Log sources, journal line rendering, and the pieces of a streamed tar (pure)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from satbridge.errors import InvalidArgument

MAX_NAME = 255
_SECRET_KEY = re.compile(r"key|secret|password|passphrase|token|code|private", re.I)


@dataclass(frozen=True)
class LogSource:
    name: str  # stable: "xcc/<file>", "satbridge/audit.log", "journal/<unit>"
    kind: str  # "file" or "journal"
    size: int = 0
    mtime: float = 0.0


def check_name(name: str) -> str:
    if not name or len(name) > MAX_NAME or name.startswith("/") or "\0" in name:
        raise InvalidArgument("a log name as `satctl logs list` shows it", field="name")
    if ".." in name.split("/"):
        raise InvalidArgument("`..` is not part of any log name", field="name")
    return name


def journal_line(entry: dict[str, Any]) -> str:
    """One journal entry (journalctl -o json) as a classic log line."""
    usec = int(entry.get("__REALTIME_TIMESTAMP", 0) or 0)
    when = dt.datetime.fromtimestamp(usec / 1e6, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    who = entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM") or "?"
    pid = entry.get("_PID")
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # journalctl sends non-UTF-8 messages as a byte array
        message = bytes(message).decode(errors="replace")
    host = entry.get("_HOSTNAME", "")
    return f"{when} {host} {who}{f'[{pid}]' if pid else ''}: {message}\n"


def tar_header(name: str, size: int, mtime: float, mode: int = 0o644) -> bytes:
    import tarfile  # only the support bundle needs it

    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = mode
    return info.tobuf(format=tarfile.PAX_FORMAT)


BLOCK = 512  # tarfile.BLOCKSIZE


def tar_padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


TAR_END = b"\0" * (2 * BLOCK)


def redact(value: Any, key: str = "") -> Any:
    """Config data with anything that looks secret replaced, for the support bundle."""
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    return "<redacted>" if key and _SECRET_KEY.search(key) else value
