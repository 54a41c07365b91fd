"""Issue 16, cases 1 and 2, and its load test: a bridge process with a 1024-descriptor limit (as
the unit had none) and the unit's malloc settings, its pairing port flooded while the paired
server calls GetStatus on an open connection and on new ones."""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from satbridge.client.inventory import Inventory
from satbridge.client.session import connect
from tests.lab.bridge import PeakRss, rss, satctl_pair, serving, unit_malloc_env

PY = sys.executable
REPO = Path(__file__).resolve().parents[2]


def _nofile_1024() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


async def _status_ok(sat, inv: Inventory, rounds: int = 3) -> None:
    for _ in range(rounds):
        async with connect(sat, inv, timeout=10) as client:  # a new mTLS connection each time
            await client.status()


async def test_a_flooded_pairing_port_leaves_the_management_port_working(tmp_path):
    root, ctl = tmp_path / "root", tmp_path / "ctl"
    env = {**os.environ, **unit_malloc_env()}
    with serving(root, env=env, preexec_fn=_nofile_1024) as bridge:
        satctl_pair(bridge, ctl)
        inv = Inventory.load(ctl)
        sat = inv.get(None)
        async with connect(sat, inv, timeout=10) as open_client:
            await open_client.status()
            await asyncio.sleep(1.0)
            idle = rss(bridge.proc.pid)
            flood = subprocess.Popen(  # noqa: ASYNC220 - started once, read from a thread
                [
                    PY,
                    "-m",
                    "tests.server.flood",
                    str(bridge.pairing),
                    "--raw",
                    "1100",
                    "--tls",
                    "200",
                    "--streams",
                    "200",
                    "--identity",
                    "1100",
                ],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                with PeakRss(bridge.proc.pid) as memory:
                    ready = asyncio.ensure_future(asyncio.to_thread(flood.stdout.readline))
                    calls = 0
                    while not ready.done():  # while the flood builds up, on the open connection
                        await open_client.status()
                        calls += 1
                        await asyncio.sleep(0.05)
                    assert (await ready).startswith("flooding"), "the flood did not get going"
                    await _status_ok(sat, inv)  # new mTLS connections
                    for _ in range(20):
                        await open_client.status()
                    fds = len(os.listdir(f"/proc/{bridge.proc.pid}/fd"))
                assert fds < 1024 - 256, f"the bridge holds {fds} descriptors under the flood"
            finally:
                if flood.stdin:
                    flood.stdin.close()
                flood.wait(timeout=30)
            await _status_ok(sat, inv)
            deadline = time.monotonic() + 20
            while rss(bridge.proc.pid) - idle > 10 * 2**20 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.5)
            after = rss(bridge.proc.pid)
            await open_client.status()
    mib = 2**20
    print(
        f"{calls} GetStatus during the build-up; bridge RSS idle {idle / mib:.0f} MiB, "
        f"peak {memory.peak / mib:.0f} MiB, after {after / mib:.0f} MiB; {fds} fds under the flood"
    )
    assert after - idle < 10 * mib, f"RSS {idle / mib:.0f} -> {after / mib:.0f} MiB after the flood"
