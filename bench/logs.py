#!/usr/bin/env python3
"""Downloading a 256 MiB log over mutual TLS (Logs.Download), against a plain Python `ssl`
socket copy doing the same job (read the file, sha256, send) on loopback, in the same run.

    .venv/bin/python bench/logs.py [--mib 256] [--rounds 3]

Both servers run as separate processes; the client side is this process and discards the bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from satbridge.api.v1 import logs_pb2
from satbridge.client.inventory import Inventory
from satbridge.client.session import connect
from tests.lab.bridge import PeakRss, free_port, satctl_pair, serving, unit_malloc_env

PY = sys.executable
MALLOC = unit_malloc_env()  # as build/units/satbridge.service runs it
SSL_SERVER = r"""
import hashlib, os, socket, ssl, sys
path, cert, key, port = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
srv = socket.create_server(("127.0.0.1", int(port))); print("ready", flush=True)
while True:
    conn, _ = srv.accept()
    with ctx.wrap_socket(conn, server_side=True) as tls:
        h = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while data := f.read(1 << 20):
                h.update(data); tls.sendall(data)
        tls.sendall(h.hexdigest().encode())
"""


SSL_CLIENT = r"""
import hashlib, socket, ssl, sys
port, size, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
h, got = hashlib.sha256(), 0
with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw) as tls, open(out, "wb") as f:
    while got < size + 64 and (data := tls.recv(1 << 20)):
        got += len(data); h.update(data); f.write(data)
"""


def command(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def ssl_copy(port: int, size: int) -> float:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw) as tls:
        got = 0
        while got < size + 64:
            data = tls.recv(1 << 20)
            if not data:
                break
            got += len(data)
    return time.perf_counter() - start


async def grpc_download(client, name: str) -> float:
    start = time.perf_counter()
    async for _ in client.logs_stream(logs_pb2.DownloadLogRequest(name=name)):
        pass
    return time.perf_counter() - start


async def main(mib: int, rounds: int, *, malloc_tuning: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="satbridge-bench-logs-"))
    root = work / "root"
    log = root / "var/log/xcc/big.log"
    log.parent.mkdir(parents=True)
    with open(log, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    size = mib << 20
    plain = free_port()
    env = {**os.environ, **(MALLOC if malloc_tuning else {})}
    with serving(root, env=env, die_with_us=True) as bridge:
        state = root / "var/lib/satbridge"
        ref = subprocess.Popen(
            [PY, "-c", SSL_SERVER, str(log), str(state / "identity.crt"), str(state / "identity.key"), str(plain)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert ref.stdout is not None
        assert ref.stdout.readline().startswith("ready")
        try:
            satctl_pair(bridge, work / "ctl")
            inv = Inventory.load(work / "ctl")
            await measure(bridge.proc.pid, inv, size, plain, mib, rounds, work)
        finally:
            ref.terminate()
            ref.wait()
    shutil.rmtree(work, ignore_errors=True)


async def measure(pid: int, inv: Inventory, size: int, plain: int, mib: int, rounds: int, work: Path) -> None:
    sat = inv.get(None)
    ours, refs, cli, cli_refs = [], [], [], []
    satctl = [PY, "-m", "satbridge.client", "--config-dir", str(work / "ctl"), "logs", "get", "xcc/big.log"]
    with PeakRss(pid) as memory:
        async with connect(sat, inv, timeout=600) as client:
            for _ in range(rounds):
                ours.append(await grpc_download(client, "xcc/big.log"))
                refs.append(await asyncio.to_thread(ssl_copy, plain, size))
        for _ in range(rounds):  # whole commands: received, hashed and written to a file
            cli.append(await asyncio.to_thread(command, [*satctl, "-o", str(work / "got.log")]))
            cli_refs.append(
                await asyncio.to_thread(command, [PY, "-c", SSL_CLIENT, str(plain), str(size), str(work / "got.ref")])
            )
    o, r = statistics.median(ours), statistics.median(refs)
    c, cr = statistics.median(cli), statistics.median(cli_refs)
    print(f"| {mib} MiB download ({rounds} rounds) | MiB/s | ratio to ssl copy |")
    print("|---|---|---|")
    print(
        f"| Logs.Download, mutual TLS, client library (goal: 0.95x, {met(r / o >= 0.95)}) "
        f"| {mib / o:.0f} | {r / o:.2f}x |"
    )
    print(f"| plain ssl socket copy (read, sha256, send) | {mib / r:.0f} | 1.00x |")
    print(
        f"| `satctl logs get -o FILE`, the whole command (goal: 0.95x, {met(cr / c >= 0.95)}) "
        f"| {mib / c:.0f} | {cr / c:.2f}x |"
    )
    print(f"| a python3 ssl receiver command (sha256, write the file), reference | {mib / cr:.0f} | 1.00x |")
    print(
        f"bridge RSS: idle {memory.idle / 2**20:.0f} MiB, peak {memory.peak / 2**20:.0f} MiB "
        f"(+{memory.grew_mib:.0f} MiB)"
    )


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-malloc-tuning", action="store_true", help="run the bridge with glibc's defaults")
    opts = parser.parse_args()
    asyncio.run(main(opts.mib, opts.rounds, malloc_tuning=not opts.no_malloc_tuning))
