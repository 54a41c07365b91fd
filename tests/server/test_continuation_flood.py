"""Issue 16, red team finding 3: HEADERS without END_HEADERS and then CONTINUATION frames without
end on the pairing port took the bridge from 90 to 1300 MiB in 14 s: grpc core applies the
metadata limit per frame, not per header block, and no channel arg bounds the block. The bridge
bounds it itself (server/app.py::BridgeServer._guard_memory): RSS stays within
PAIRING_MEMORY_BUDGET (+ what arrives between two looks) of idle, and the paired server's
GetStatus keeps working throughout."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from satbridge.client.inventory import Inventory
from satbridge.client.session import connect
from satbridge.server.app import PAIRING_MEMORY_BUDGET
from tests.lab.bridge import PeakRss, rss, satctl_pair, serving, unit_malloc_env

PY = sys.executable
REPO = Path(__file__).resolve().parents[2]
MIB = 2**20
# What a loopback attacker adds between two looks of the guard, and grpc's own buffers (measured).
SLACK = 64 * MIB


async def test_a_continuation_flood_keeps_memory_within_budget(tmp_path):
    root, ctl = tmp_path / "root", tmp_path / "ctl"
    with serving(root, env={**os.environ, **unit_malloc_env()}) as bridge:
        satctl_pair(bridge, ctl)
        inv = Inventory.load(ctl)
        sat = inv.get(None)
        async with connect(sat, inv, timeout=10) as client:
            await client.status()
            await asyncio.sleep(0.5)
            idle = rss(bridge.proc.pid)
            flood = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for from a thread
                [PY, "-m", "tests.server.h2flood", str(bridge.pairing), "cont", "16", "8"],
                cwd=REPO,
                stdout=subprocess.PIPE,
                text=True,
            )
            calls = 0
            try:
                with PeakRss(bridge.proc.pid) as memory:
                    done = asyncio.ensure_future(asyncio.to_thread(flood.communicate, timeout=60))
                    while not done.done():
                        await client.status()
                        calls += 1
                        await asyncio.sleep(0.1)
                    sent = (await done)[0].strip()
            finally:
                if flood.poll() is None:
                    flood.kill()
                    flood.wait()
            await client.status()
    print(f"{sent}; {calls} GetStatus; RSS idle {idle / MIB:.0f} MiB, peak {memory.peak / MIB:.0f} MiB")
    assert memory.peak - idle < PAIRING_MEMORY_BUDGET + SLACK, (
        f"RSS {idle / MIB:.0f} -> {memory.peak / MIB:.0f} MiB under a CONTINUATION flood"
    )
