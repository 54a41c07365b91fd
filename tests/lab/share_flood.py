"""One source floods a bridge port while the paired server and a second source use it; run
inside the client namespace, prints the outcome as JSON (issue 16, per-source shares).

    python -m tests.lab.share_flood CONFIG_DIR HOST PORT FLOOD_SOURCE COUNT

The flood opens COUNT plain TCP connections from FLOOD_SOURCE and holds them; then, with the
flood still held, the paired server (the namespace's primary address) calls GetIdentity on the
pairing port and GetStatus on the management port, each over new connections to HOST.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import sys
from pathlib import Path

import grpc

from satbridge.api.v1 import pairing_pb2, pairing_pb2_grpc, system_pb2, system_pb2_grpc
from satbridge.client.inventory import Inventory
from satbridge.client.session import management_channel, pairing_channel


def flood(host: str, port: int, source: str, count: int) -> tuple[list[socket.socket], dict[str, int]]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    held: list[socket.socket] = []
    seen = {"connected": 0, "refused": 0, "other": 0}
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(2.0)
        try:
            sock.bind((source, 0))
            sock.connect((host, port))
        except ConnectionRefusedError:
            seen["refused"] += 1
            sock.close()
            continue
        except OSError:
            seen["other"] += 1
            sock.close()
            continue
        seen["connected"] += 1
        held.append(sock)
    return held, seen


async def honest(config_dir: Path, host: str) -> dict[str, list[str]]:
    inv = Inventory.load(config_dir)
    sat = dataclasses.replace(inv.get(None), host=host)
    out: dict[str, list[str]] = {"GetIdentity": [], "GetStatus": []}
    for _ in range(3):  # a new connection each time: the kernel decides on every one
        async with pairing_channel(host, sat.pairing_port, sat.identity_pem.encode()) as channel:
            try:
                await pairing_pb2_grpc.PairingStub(channel).GetIdentity(pairing_pb2.GetIdentityRequest(), timeout=10)
                out["GetIdentity"].append("OK")
            except grpc.aio.AioRpcError as exc:
                out["GetIdentity"].append(exc.code().name)
        async with management_channel(sat, inv.client_key()) as channel:
            try:
                await system_pb2_grpc.SystemStub(channel).GetStatus(system_pb2.GetStatusRequest(), timeout=10)
                out["GetStatus"].append("OK")
            except grpc.aio.AioRpcError as exc:
                out["GetStatus"].append(exc.code().name)
    return out


def main() -> None:
    config_dir, host, port, source, count = sys.argv[1:6]
    held, seen = flood(host, int(port), source, int(count))
    try:
        calls = asyncio.run(honest(Path(config_dir), host))
    finally:
        for sock in held:
            sock.close()
    print(json.dumps({"flood": seen, **calls}))


if __name__ == "__main__":
    main()
