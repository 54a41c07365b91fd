"""Reading the systemd journal through journalctl (via the runner)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from satbridge.core.logs import journal_line
from satbridge.errors import SatbridgeError
from satbridge.system.runner import run, stream

log = logging.getLogger(__name__)


class JournalLogs:
    """The UnitLogs port. `directory` reads another machine's journal (a lab container's)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory

    async def tail(self, unit: str, lines: int) -> list[str]:
        argv = ["journalctl", "--no-pager", "-o", "cat", "-n", str(lines), "-u", unit]
        if self.directory:
            argv += ["-D", str(self.directory)]
        try:
            done = await run(argv, timeout=10)
        except SatbridgeError as exc:
            log.warning("cannot read the journal of %s: %s", unit, exc)
            return []
        if done.returncode:
            log.warning("journalctl for %s failed: %s", unit, done.stderr.decode(errors="replace").strip())
            return []
        return done.stdout.decode(errors="replace").splitlines()[-lines:]


def render_entry(raw: bytes) -> bytes:
    """One line of `journalctl -o json` as a log line; an entry that does not parse is shown as
    such, so one bad entry never costs the lines after it."""
    try:
        entry = json.loads(raw)
    except (ValueError, RecursionError):
        log.warning("unreadable journal entry (%d bytes)", len(raw))
        return f"(an unreadable journal entry of {len(raw)} bytes)\n".encode()
    return journal_line(entry).encode(errors="replace")


class JournalReader:
    """Journal entries of a unit as text lines, through `journalctl -o json` (via the runner)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory

    def _argv(self, unit: str) -> list[str]:
        # --all: without it journalctl writes null for any field over 4096 bytes
        argv = ["journalctl", "--no-pager", "--all", "-o", "json", "-u", unit]
        if self.directory:
            argv += ["-D", str(self.directory)]
        return argv

    async def lines(
        self, unit: str, *, since: float | None = None, lines: int = 0, follow: bool = False
    ) -> AsyncIterator[bytes]:
        argv = self._argv(unit)
        if since:
            argv.append(f"--since=@{int(since)}")
        if lines:
            argv += ["-n", str(lines)]
        if follow:
            argv.append("-f")
        pending = b""
        async for data in stream(argv):
            pending += data
            *complete, pending = pending.split(b"\n")
            out = []
            for raw in complete:
                if raw.strip():
                    out.append(render_entry(raw))
            if out:
                yield b"".join(out)

    async def available(self) -> bool:
        try:
            done = await run(["journalctl", "--version"], timeout=10)
        except SatbridgeError:
            return False
        return done.returncode == 0
