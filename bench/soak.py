#!/usr/bin/env python3
"""Soak: mixed load on a sandbox bridge for a while; RSS growth, file descriptors, errors.

    .venv/bin/python bench/soak.py [--minutes 10] [--clients 8]     (make soak)

Load per client, round-robin: GetStatus, Firewall.Get, Logs.List, a 1 MiB log download, a
1 MiB upload (announce + stream), GetVersions, and a GetIdentity on the pairing port. RSS and
the fd count are taken after a warm-up (10% of the run) and at the end. Goals: RSS growth <= 5%,
a stable fd count, 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from satbridge.api.v1 import (
    firewall_pb2,
    firewall_pb2_grpc,
    logs_pb2,
    pairing_pb2,
    pairing_pb2_grpc,
    update_pb2,
    update_pb2_grpc,
)
from satbridge.client.inventory import Inventory
from satbridge.client.session import connect, pairing_channel
from satbridge.client.update import send_stream
from tests.lab.bridge import rss, satctl_pair, serving, unit_malloc_env


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def client_loop(sat, inv, pairing_port: int, until: float, errors: list[str], n: int) -> int:
    done = 0
    blob = os.urandom(1 << 20)
    async with connect(sat, inv, timeout=30) as client:
        fw = firewall_pb2_grpc.FirewallStub(client.channel)
        up = update_pb2_grpc.UpdateStub(client.channel)
        i = 0
        while time.monotonic() < until:
            i += 1
            step = i % 7
            try:
                if step == 0:
                    await client.status()
                elif step == 1:
                    await fw.Get(firewall_pb2.GetFirewallRequest(), timeout=30)
                elif step == 2:
                    await client.logs_list()
                elif step == 3:
                    async for _ in client.logs_stream(logs_pb2.DownloadLogRequest(name="xcc/soak.log")):
                        pass
                elif step == 4:
                    data = blob[: (i % 997) + 1] + str(n).encode()
                    begun = await up.BeginUpload(
                        update_pb2.BeginUploadRequest(
                            name="xcc", version=f"9.{n}.{i}", size=len(data), sha256=hashlib.sha256(data).hexdigest()
                        )
                    )

                    async def one(begun=begun, data=data):
                        yield update_pb2.UploadChunk(upload_id=begun.upload_id, offset=0, data=data)

                    await send_stream(up.Upload(), one())
                elif step == 5:
                    await up.GetVersions(update_pb2.GetVersionsRequest(), timeout=30)
                else:
                    async with pairing_channel("127.0.0.1", pairing_port, sat.identity_pem.encode()) as ch:
                        await pairing_pb2_grpc.PairingStub(ch).GetIdentity(pairing_pb2.GetIdentityRequest(), timeout=30)
                done += 1
            except Exception as exc:  # noqa: BLE001 - a soak counts every failure
                errors.append(f"{type(exc).__name__}: {exc}")
    return done


async def main(minutes: float, clients: int) -> int:
    work = Path(tempfile.mkdtemp(prefix="satbridge-soak-"))
    root = work / "root"
    (root / "var/log/xcc").mkdir(parents=True)
    (root / "var/log/xcc/soak.log").write_bytes(os.urandom(1 << 20))
    (root / "etc/satbridge").mkdir(parents=True)
    (root / "etc/satbridge/satbridge.toml").write_text("[update]\nmax_package_mib = 8\n")
    try:
        env = {**os.environ, **unit_malloc_env()}  # as build/units/satbridge.service runs it
        with serving(root, env=env, die_with_us=True) as bridge:
            satctl_pair(bridge, work / "ctl")
            inv = Inventory.load(work / "ctl")
            sat = inv.get(None)
            start = time.monotonic()
            until = start + minutes * 60
            errors: list[str] = []
            tasks = [
                asyncio.create_task(client_loop(sat, inv, bridge.pairing, until, errors, n)) for n in range(clients)
            ]
            await asyncio.sleep(minutes * 6)  # warm-up: 10% of the run
            rss0, fd0 = rss(bridge.proc.pid), fds(bridge.proc.pid)
            calls = sum(await asyncio.gather(*tasks))
            rss1, fd1 = rss(bridge.proc.pid), fds(bridge.proc.pid)
            for staged in (root / "var/lib/satbridge/uploads").glob("*"):
                staged.unlink()
        growth = 100 * (rss1 - rss0) / rss0
        print(f"| soak {minutes:g} min, {clients} clients | value |")
        print("|---|---|")
        print(f"| calls | {calls} ({calls / (minutes * 60):.0f}/s) |")
        print(f"| errors | {len(errors)} |")
        verdict = "met" if growth <= 5 else "NOT met"
        print(
            f"| RSS after warm-up -> end (goal <= +5 %: {verdict}) "
            f"| {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB ({growth:+.1f}%) |"
        )
        print(f"| open fds after warm-up -> end | {fd0} -> {fd1} |")
        for e in sorted(set(errors))[:5]:
            print(f"error: {e}")
        return 0 if not errors and growth <= 5 and fd1 <= fd0 + 4 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    opts = parser.parse_args()
    sys.exit(asyncio.run(main(opts.minutes, opts.clients)))
