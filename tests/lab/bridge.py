"""A bridge as a real process (sandbox mode) for tests that kill or restart it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bridge:
    def __init__(self, root: Path, bus: str) -> None:
        self.root, self.bus = root, bus
        self.mgmt, self.pairing = free_port(), free_port()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, failpoint: str = "") -> None:
        env = {**os.environ, "SATBRIDGE_DBUS_ADDRESS": self.bus}
        if failpoint:
            env["SATBRIDGE_FAILPOINT"] = failpoint
        self.proc = await asyncio.create_subprocess_exec(
            PY,
            "-m",
            "satbridge",
            "--root",
            str(self.root),
            "--sandbox",
            "--serve",
            "--log-level",
            "warning",
            "--listen",
            f"127.0.0.1:{self.mgmt}",
            "--pairing-listen",
            f"127.0.0.1:{self.pairing}",
            env=env,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.pairing)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise AssertionError("the bridge did not start")

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await self.proc.wait()
