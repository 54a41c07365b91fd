#!/usr/bin/env python3
"""GetStatus latency with 50 concurrent clients (each its own mutual-TLS connection), while a
package upload runs, against the same 50 clients on an idle bridge: same bridge, same run.

    .venv/bin/python bench/status_latency.py [--clients 50] [--interval 0.2] [--seconds 10] [--mib 512]

Each client calls every --interval seconds (a poller, as a management server is); with
--interval 0 they call back to back, and the latency then measures the queue, not the service.

The upload runs in a child process (its own channel and CPU), so the clients' latency shows what
the bridge does to them, not what the uploader does to the clients' event loop. A third round
runs a plain `ssl` socket copy of the same file beside the bridge instead (bench/upload.py's
reference): on a small machine any transfer takes CPU from everything else, and that round
tells what share of the slow-down the bridge's own upload path adds.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from grpc_health.v1 import health_pb2, health_pb2_grpc
from upload import ssl_send, start_ssl_sink

from satbridge.api.v1 import system_pb2, system_pb2_grpc, update_pb2, update_pb2_grpc
from satbridge.client.inventory import Inventory
from satbridge.client.session import connect
from satbridge.client.update import send_stream
from tests.lab.bridge import free_port, satctl_pair, serving, unit_malloc_env

MALLOC = unit_malloc_env()  # as build/units/satbridge.service runs it


async def upload_forever(ctl: Path, payload: Path, stop_file: Path) -> None:
    """The child: upload `payload` again and again until told to stop. Each round changes its
    last 8 bytes (the bridge names an upload by its sha256: the same bytes again would be
    refused under a new version), so the hash of all but those is taken once."""
    inv = Inventory.load(ctl)
    size = payload.stat().st_size
    head = hashlib.sha256()
    with open(payload, "rb") as f:
        while data := f.read(min(1 << 20, size - 8 - f.tell())):
            head.update(data)
    n = 0
    async with connect(inv.get(None), inv, timeout=600) as client:
        stub = update_pb2_grpc.UpdateStub(client.channel)
        print("uploading", flush=True)
        while not stop_file.exists():
            n += 1
            tail = (os.getpid() << 32 | n).to_bytes(8, "big")  # several children: each its own files
            digest = head.copy()
            digest.update(tail)
            begun = await stub.BeginUpload(
                update_pb2.BeginUploadRequest(
                    name="xcc", version=f"9.{n}.{os.getpid()}", size=size, sha256=digest.hexdigest()
                )
            )

            async def chunks(upload_id: str = begun.upload_id, tail: bytes = tail):
                offset = 0
                with open(payload, "rb") as f:
                    while data := f.read(1 << 20):
                        if offset + len(data) == size:
                            data = data[:-8] + tail
                        yield update_pb2.UploadChunk(upload_id=upload_id, offset=offset, data=data)
                        offset += len(data)

            await send_stream(stub.Upload(), chunks())
    print(f"uploads {n}", flush=True)


def ssl_copy_forever(port: int, payload: Path, stop_file: Path) -> None:
    """The child of the third round: the reference transfer, again and again."""
    print("copying", flush=True)
    n = 0
    while not stop_file.exists():
        ssl_send(port, payload)
        n += 1
    print(f"copies {n}", flush=True)


async def under(
    load: list[str], ready: str, ctl: Path, clients: int, seconds: float, interval: float, stop: Path, n: int = 1
):
    """Poll while `n` child processes each put `load` on the machine; the latencies and the
    children's total count."""
    stop.unlink(missing_ok=True)
    children = [
        subprocess.Popen([sys.executable, __file__, *load, str(stop)], stdout=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    outs = []
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().startswith(ready)
        await asyncio.sleep(1)  # the transfers are under way
        latencies = await poll(ctl, clients, seconds, interval)
    finally:
        stop.touch()
        outs = [child.communicate(timeout=600)[0] for child in children]
    return latencies, sum(int(out.split()[-1]) for out in outs)


async def poll(ctl: Path, clients: int, seconds: float, interval: float, *, health: bool = False) -> list[float]:
    """GetStatus (or, with `health`, the cheapest call there is: a health check) from every client."""
    inv = Inventory.load(ctl)
    sat = inv.get(None)
    latencies: list[float] = []

    async def one() -> None:
        async with connect(sat, inv) as client:
            if health:
                call = functools.partial(
                    health_pb2_grpc.HealthStub(client.channel).Check, health_pb2.HealthCheckRequest()
                )
            else:
                call = functools.partial(
                    system_pb2_grpc.SystemStub(client.channel).GetStatus, system_pb2.GetStatusRequest()
                )
            await call()  # the connection is up before timing
            await ready.wait()
            await asyncio.sleep(random.uniform(0, interval))  # spread the clients over the interval
            end = time.monotonic() + seconds
            next_call = time.monotonic()
            while time.monotonic() < end:
                start = time.perf_counter()
                await call()
                latencies.append(time.perf_counter() - start)
                next_call += interval
                await asyncio.sleep(max(0.0, next_call - time.monotonic()))

    ready = asyncio.Event()
    tasks = [asyncio.create_task(one()) for _ in range(clients)]
    await asyncio.sleep(0.5)
    ready.set()
    await asyncio.gather(*tasks)
    return latencies


async def during_flood(pairing_port: int, ctl: Path, clients: int, seconds: float, interval: float) -> list[float]:
    """Poll while a stranger floods the pairing port from another process (tests/server/flood.py:
    raw TCP connections, TLS without the HTTP/2 preface, headers-only streams, a GetIdentity
    storm), as issue 16 asks: the paired server's calls must not suffer."""
    top = Path(__file__).resolve().parent.parent
    flood = subprocess.Popen(
        [sys.executable, "-m", "tests.server.flood", str(pairing_port), "--raw", "600", "--tls", "100",
         "--streams", "64", "--identity", "400"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=top,
    )  # fmt: skip
    try:
        assert flood.stdout is not None
        assert flood.stdout.readline().startswith("flooding")
        return await poll(ctl, clients, seconds, interval)
    finally:
        flood.communicate("", timeout=120)  # stdin closed: it lets go


def bridge_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] * 1e3


async def main(clients: int, interval: float, seconds: float, mib: int, streams: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="satbridge-bench-lat-"))
    try:
        await measure(work, clients, interval, seconds, mib, streams)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the payload and every staged upload


async def measure(work: Path, clients: int, interval: float, seconds: float, mib: int, streams: int) -> None:
    root, ctl = work / "root", work / "ctl"
    payload = work / "payload.bin"
    with open(payload, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    cfg = root / "etc/satbridge/satbridge.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f"[update]\nmax_package_mib = {mib * 2}\n")
    with serving(root, env={**os.environ, **MALLOC}, die_with_us=True) as served:
        satctl_pair(served, ctl)
        cpu = bridge_cpu(served.proc.pid)
        idle = await poll(ctl, clients, seconds, interval)
        cpu_status = (bridge_cpu(served.proc.pid) - cpu) / len(idle)
        cpu = bridge_cpu(served.proc.pid)
        checks = await poll(ctl, clients, seconds, interval, health=True)
        cpu_health = (bridge_cpu(served.proc.pid) - cpu) / len(checks)
        stop = work / "stop"
        busy, uploads = await under(
            ["--upload-child", str(ctl), str(payload)], "uploading", ctl, clients, seconds, interval, stop, streams
        )
        flooded = await during_flood(served.pairing, ctl, clients, seconds, interval)
        sink = free_port()
        ref = start_ssl_sink(root / "var/lib/satbridge", sink, work / "ssl.out")
        try:
            copied, copies = await under(
                ["--ssl-child", str(sink), str(payload)], "copying", ctl, clients, seconds, interval, stop
            )
        finally:
            ref.terminate()
            ref.wait()
    rate_idle, rate_busy = len(idle) / seconds, len(busy) / seconds
    pace = f"each every {interval:g} s" if interval else "back to back"
    print(f"| GetStatus, {clients} clients {pace}, {seconds:g} s | p50 ms | p99 ms | calls/s |")
    print("|---|---|---|---|")
    print(f"| idle bridge (reference) | {p(idle, 0.5):.1f} | {p(idle, 0.99):.1f} | {rate_idle:.0f} |")
    busy_row = f"{p(busy, 0.5):.1f} | {p(busy, 0.99):.1f} | {rate_busy:.0f}"
    goal = "met" if p(busy, 0.99) <= 50 else "NOT met"
    print(
        f"| while {streams} uploads of {mib} MiB run at once ({uploads} started; goal p99 <= 50 ms: {goal}) "
        f"| {busy_row} |"
    )
    print(
        f"| while a stranger floods the pairing port (goal: as idle) | {p(flooded, 0.5):.1f} "
        f"| {p(flooded, 0.99):.1f} | {len(flooded) / seconds:.0f} |"
    )
    print(
        f"| ratio, pairing-port flood / idle | {p(flooded, 0.5) / p(idle, 0.5):.2f}x "
        f"| {p(flooded, 0.99) / p(idle, 0.99):.2f}x | {len(flooded) / len(idle):.2f}x |"
    )
    rate_copy = len(copied) / seconds
    print(
        f"| while a plain ssl copy of {mib} MiB runs beside it ({copies} copies) | {p(copied, 0.5):.1f} "
        f"| {p(copied, 0.99):.1f} | {rate_copy:.0f} |"
    )
    print(
        f"| ratio, our upload / idle | {p(busy, 0.5) / p(idle, 0.5):.2f}x | {p(busy, 0.99) / p(idle, 0.99):.2f}x "
        f"| {rate_busy / rate_idle:.2f}x |"
    )
    print(
        f"| ratio, our upload / an ssl copy beside it | {p(busy, 0.5) / p(copied, 0.5):.2f}x "
        f"| {p(busy, 0.99) / p(copied, 0.99):.2f}x | {rate_busy / rate_copy:.2f}x |"
    )
    print()
    print("| bridge CPU per call, idle bridge | ms | ratio to a health check |")
    print("|---|---|---|")
    goal = "met" if cpu_status <= 0.3e-3 else "NOT met"
    print(f"| GetStatus (goal: at most 0.3 ms: {goal}) | {cpu_status * 1e3:.2f} | {cpu_status / cpu_health:.2f}x |")
    print(f"| Health.Check (gRPC's own cost of a call, reference) | {cpu_health * 1e3:.2f} | 1.00x |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--upload-child"]:
        asyncio.run(upload_forever(*map(Path, sys.argv[2:5])))
        sys.exit(0)
    if sys.argv[1:2] == ["--ssl-child"]:
        ssl_copy_forever(int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
        sys.exit(0)
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--uploads", type=int, default=3, help="uploads at once (the issue's measure: 3)")
    opts = parser.parse_args()
    asyncio.run(main(opts.clients, opts.interval, opts.seconds, opts.mib, opts.uploads))
