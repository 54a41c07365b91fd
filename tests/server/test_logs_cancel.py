"""Red team 21: downloads with read-ahead (issue 21) cancelled after their first chunk leave
no descriptor on the file behind and no thread per download."""

from __future__ import annotations

import asyncio
import os
import threading

from satbridge.api.v1 import logs_pb2
from tests.server.test_logs import client  # noqa: F401


def open_on(path) -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                n += 1
        except OSError:
            pass
    return n


async def test_fifty_cancelled_downloads_leave_no_descriptor_or_thread_behind(client, running):  # noqa: F811
    path = running.bridge.config.paths.xcc_log_dir / "big.log"
    path.write_bytes(os.urandom(1 << 20) * 64)
    fds0, th0 = len(os.listdir("/proc/self/fd")), threading.active_count()

    async def first_chunk_only(compression: int) -> None:
        request = logs_pb2.DownloadLogRequest(name="xcc/big.log", compression=compression)
        async for _chunk in client.logs_stream(request):
            return  # the stream is cancelled with read-ahead and hashing under way

    for compression in (0, 1, 2) * 17:
        await first_chunk_only(compression)
    for _ in range(50):
        await asyncio.sleep(0.1)
        if open_on(path) == 0:
            break
    assert open_on(path) == 0
    assert len(os.listdir("/proc/self/fd")) <= fds0 + 5
    assert threading.active_count() <= th0 + (os.cpu_count() or 1) + 4, "the default executor's threads at most"
