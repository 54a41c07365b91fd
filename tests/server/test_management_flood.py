"""Issue 16, red team finding 1: a raw TCP flood of the *management* port (open to the LAN like
the pairing port) took every descriptor, and the paired server's open connection got INTERNAL
"Too many open files". A bridge process with the unit's limits against a stranger who keeps
1100 raw connections open (reopening each one the bridge closes): the paired server's GetStatus
keeps working on its open connection and the descriptors stay within budget.

New connections from the *same* address as the flood are not asserted: grpc core's connection cap
is one for all sources, so a stranger who reopens every slot at once wins most races for it. What
shares the port per source address is the kernel (connlimit), see README "Strangers on the LAN"."""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from satbridge.client.inventory import Inventory
from satbridge.client.session import connect
from satbridge.errors import SatbridgeError
from tests.lab.bridge import rss, satctl_pair, serving, unit_malloc_env

PY = sys.executable
REPO = Path(__file__).resolve().parents[2]


def _nofile(n: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    return limit


@pytest.mark.parametrize("nofile", [1024, 8192])
async def test_a_flooded_management_port_keeps_the_paired_server_working(tmp_path, nofile):
    root, ctl = tmp_path / "root", tmp_path / "ctl"
    env = {**os.environ, **unit_malloc_env()}
    with serving(root, env=env, preexec_fn=_nofile(nofile)) as bridge:
        satctl_pair(bridge, ctl)
        inv = Inventory.load(ctl)
        sat = inv.get(None)
        async with connect(sat, inv, timeout=10) as open_client:
            await open_client.status()
            idle = rss(bridge.proc.pid)
            flood = subprocess.Popen(  # noqa: ASYNC220 - started once, read from a thread
                [PY, "-m", "tests.server.flood", str(bridge.mgmt), "--raw", "1100", "--keep"],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            held: list[float] = []
            fresh: list[float] = []
            refused = 0
            fds = 0
            try:
                line = await asyncio.to_thread(flood.stdout.readline)
                assert line.startswith("flooding"), "the flood did not get going"
                end = time.monotonic() + 8
                while time.monotonic() < end:
                    start = time.monotonic()
                    await open_client.status()  # INTERNAL "Too many open files" before the fix
                    held.append(time.monotonic() - start)
                    start = time.monotonic()
                    try:
                        async with connect(sat, inv, timeout=3) as client:  # a new mTLS connection
                            await client.status()
                        fresh.append(time.monotonic() - start)
                    except SatbridgeError:
                        refused += 1
                    fds = max(fds, len(os.listdir(f"/proc/{bridge.proc.pid}/fd")))
                    await asyncio.sleep(0.2)
                peak = rss(bridge.proc.pid)
            finally:
                if flood.stdin:
                    flood.stdin.close()
                flood.wait(timeout=30)
            await open_client.status()
    mib = 2**20
    worst = max(held), max(fresh, default=0.0)
    print(
        f"nofile {nofile}: {len(held)} GetStatus on the open connection (max {worst[0] * 1000:.0f} ms), "
        f"{len(fresh)} on new ones (max {worst[1] * 1000:.0f} ms), {refused} new ones refused; "
        f"{fds} fds; RSS {idle / mib:.0f} -> {peak / mib:.0f} MiB"
    )
    assert fds < min(nofile, 1024) - 128, f"the bridge holds {fds} descriptors under the flood"
