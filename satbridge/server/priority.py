"""Small calls before bulk chunks on the one event loop (issue 21: GetStatus p99 during uploads).

grpc.aio serves every call of a port on one event loop, and an upload is a stream of 1 MiB
messages, each taking loop time to receive, parse, hash and hand to the writer. With three
uploads at full speed the loop never idles, and a GetStatus waits behind whatever chunk work is
queued (p99 about 0.9 s in bench/status_latency.py while a plain ssl copy beside the bridge cost
it 15 ms). So while unary calls keep arriving, each bulk stream pauses briefly before it asks
for its next chunk: gRPC's flow control then holds the sender (the HTTP/2 window, RFC 9113
section 5.2), the loop has room for the small calls, and a bulk stream runs at full speed again
as soon as they stop. Measured (bench/status_latency.py --seconds 5 --mib 256, 3 uploads, 50
pollers at 5/s): p50/p99 264/669 ms without the pause, 19/153 ms with 4 ms, 4.5/136 ms with 15 ms.
"""

from __future__ import annotations

import asyncio
import time

RECENT = 0.25
"""Seconds after a unary call's arrival during which bulk streams yield."""

PAUSE = 0.01
"""Seconds a bulk stream waits before each full chunk (CHUNK bytes) while unary calls are recent."""

CHUNK = 1 << 20
"""Bytes of the chunk PAUSE is for (client/update.py's chunk): a smaller chunk waits its share of
PAUSE, so a stream of small chunks is held to the same floor, CHUNK per PAUSE (100 MiB/s of
pauses), not PAUSE per chunk (0.4 MiB/s for 4 KiB chunks)."""


class Priority:
    """One per bridge process: `control()` on each unary call, `await bulk()` before a chunk."""

    def __init__(self, recent: float = RECENT, pause: float = PAUSE) -> None:
        self.recent, self.pause = recent, pause
        self._last_control = -recent

    def control(self) -> None:
        self._last_control = time.monotonic()

    async def bulk(self, size: int = CHUNK) -> None:
        """Before the next chunk; `size`: bytes of the chunk just handled."""
        if time.monotonic() - self._last_control < self.recent:
            await asyncio.sleep(self.pause * min(1.0, max(size, 0) / CHUNK))


PRIORITY = Priority()
