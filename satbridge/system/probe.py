"""Health probes for XCC: a TCP connect or an HTTP GET on 127.0.0.1.

With `netns` (a lab: XCC in a container with its own network), the probe runs inside that
network namespace through nsenter (via the runner).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from satbridge.core.package import Health
from satbridge.errors import SatbridgeError
from satbridge.system.runner import run

_PROBE = """
import socket, sys, urllib.request
kind, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if kind == "tcp":
    socket.create_connection(("127.0.0.1", port), 2).close()
else:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
        sys.exit(0 if 200 <= r.status < 300 else 1)
"""


class Prober:
    def __init__(self, netns: Path | None = None) -> None:
        self.netns = netns

    async def check(self, health: Health) -> bool:
        if self.netns is not None:
            try:
                done = await run(
                    [
                        "nsenter",
                        f"--net={self.netns}",
                        "python3",
                        "-c",
                        _PROBE,
                        health.kind,
                        str(health.port),
                        health.path,
                    ],
                    timeout=10,
                )
            except SatbridgeError:
                return False
            return done.returncode == 0
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", health.port), 2)
        except (OSError, TimeoutError):
            return False
        try:
            if health.kind == "tcp":
                return True
            writer.write(f"GET {health.path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 2)
            parts = status.split()
            return len(parts) >= 2 and parts[1][:1] == b"2"
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
