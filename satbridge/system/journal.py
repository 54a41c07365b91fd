"""Reading the systemd journal through journalctl (via the runner)."""

from __future__ import annotations

import logging
from pathlib import Path

from satbridge.errors import SatbridgeError
from satbridge.system.runner import run

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
