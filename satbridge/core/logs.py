"""Log sources, journal line rendering, and the pieces of a streamed tar (pure)."""

from __future__ import annotations

import codecs
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from satbridge.errors import InvalidArgument

MAX_NAME = 4096  # a whole name: PATH_MAX (limits.h); each component at most NAME_MAX, 255 bytes
_SECRET_KEY = re.compile(r"key|secret|password|passphrase|token|code|private", re.I)


@dataclass(frozen=True)
class LogSource:
    name: str  # stable: "xcc/<file>", "satbridge/audit.log", "journal/<unit>"
    kind: str  # "file" or "journal"
    size: int = 0
    mtime: float = 0.0


def check_name(name: str) -> str:
    if (
        not name
        or len(name.encode(errors="replace")) > MAX_NAME
        or any(len(part.encode(errors="replace")) > 255 for part in name.split("/"))
        or name.startswith("/")
        or "\0" in name
    ):
        raise InvalidArgument("a log name as `satctl logs list` shows it", field="name")
    parts = name.split("/")
    if ".." in parts:
        raise InvalidArgument("`..` is not part of any log name", field="name")
    if any(part in ("", ".") for part in parts):
        # One spelling per log: `satbridge//audit.log` or `satbridge/audit.log/` would otherwise
        # reach the file system as another path (an absolute one, or the file as a directory).
        raise InvalidArgument("a log name has no empty or `.` component (as `satctl logs list` shows it)", field="name")
    return name


# C0 controls but tab and newline, DEL and C1: what a terminal may act on (ECMA-48), shown as \xNN
_INDENT = "    "  # continuation lines of a multi-line message, as journalctl's short output does

# Bidirectional formatting controls (Unicode UAX #9): they reorder what the terminal shows
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\udc80-\udcff]")
_UNSAFE_ASCII = re.compile("[^\t\n\x20-\x7e]")


def _shown(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def field_text(value: Any) -> str:
    """One field of journalctl's JSON output as text, whatever shape journald gave it.

    Per systemd's "Journal JSON Format" (systemd.io/JOURNAL_EXPORT_FORMATS): a string; an
    array of numbers for a value that is not valid UTF-8 or holds control characters (bytes);
    null for a value over 4096 bytes when journalctl runs without --all; and an array of those
    when the entry carries the field more than once (the values joined by newlines here).
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value):
            return bytes(value).decode(errors="replace")
        return "\n".join(field_text(v) for v in value)
    return str(value)


def printable(text: str) -> str:
    """`text` safe for a terminal: controls escaped as \\xNN (tab kept), newlines indented."""
    text = _UNSAFE.sub(lambda m: _shown(m.group()), text.rstrip("\n"))
    return text.replace("\n", "\n" + _INDENT)


def journal_line(entry: Any) -> str:
    """One journal entry (a decoded line of `journalctl -o json --all`) as a classic log line,
    terminal-safe and never failing: what cannot be read is shown as such."""
    if not isinstance(entry, dict):
        return f"(a journal entry that is not an object: {printable(repr(entry)[:200])})\n"
    try:
        usec = int(field_text(entry.get("__REALTIME_TIMESTAMP")) or 0)
        when = dt.datetime.fromtimestamp(usec / 1e6, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (ValueError, OverflowError, OSError):
        when = "(no time)"
    who = field_text(entry.get("SYSLOG_IDENTIFIER")) or field_text(entry.get("_COMM")) or "?"
    pid = field_text(entry.get("_PID"))
    host = field_text(entry.get("_HOSTNAME"))
    head = printable(f"{when} {host} {who}{f'[{pid}]' if pid else ''}".replace("\n", " "))
    return f"{head}: {printable(field_text(entry.get('MESSAGE')))}\n"


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


class TerminalFilter:
    """Bytes of a log made safe for a terminal, chunk by chunk (ECMA-48; UAX #9).

    The bytes are decoded as UTF-8 across chunk boundaries. Shown as `\\xNN` (or `\\uNNNN`),
    never sent: C0 controls but tab and newline, DEL, C1 controls (U+0080..U+009F), bidi
    formatting controls, and any byte that is not UTF-8 (a lone 0x9B is CSI to an 8-bit
    terminal). With `ascii_only` (a non-UTF-8 locale, a vt220), everything but printable ASCII
    is shown escaped, since such a terminal reads UTF-8's bytes 0x80..0x9F as C1 controls.
    """

    def __init__(self, *, ascii_only: bool = False) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self._unsafe = _UNSAFE_ASCII if ascii_only else _UNSAFE

    def _render(self, text: str) -> bytes:
        def shown(m: re.Match[str]) -> str:
            c = m.group()
            if 0xDC80 <= ord(c) <= 0xDCFF:  # a byte that was not UTF-8 (PEP 383)
                return f"\\x{ord(c) - 0xDC00:02x}"
            return _shown(c)

        return self._unsafe.sub(shown, text).encode()

    def feed(self, data: bytes) -> bytes:
        return self._render(self._decoder.decode(data))

    def flush(self) -> bytes:
        return self._render(self._decoder.decode(b"", final=True))
