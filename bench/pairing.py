#!/usr/bin/env python3
"""Pairing latency, end to end over loopback TLS, against a bare TLS handshake + one gRPC call.

    .venv/bin/python bench/pairing.py [--rounds N]

One pairing = handshake probe, GetIdentity, a CSR, Pair (ECDSA signing and two
fsynced state writes on the bridge), and the client's checks. The reference in the same loop is
what no pairing can avoid: the probe plus a fresh channel doing one GetIdentity.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from satbridge.api.v1 import pairing_pb2, pairing_pb2_grpc
from satbridge.client.inventory import Inventory
from satbridge.client.session import pair, pairing_channel
from satbridge.config import load_config
from satbridge.core.addresses import ListenAddress
from satbridge.server.app import BridgeServer
from satbridge.tls.certs import der_to_pem
from satbridge.tls.handshake import fetch_server_certificate
from satbridge.wiring import wire


async def main(rounds: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="satbridge-bench-"))
    try:
        config = load_config(work / "root", env={})
        loop = ListenAddress("127.0.0.1", 0)
        bridge = wire(replace(config, server=replace(config.server, listen=loop, pairing_listen=loop)))
        server = BridgeServer(bridge)
        bound = await server.start()
        inv = Inventory.load(work / "ctl")
        inv.client_key()
        pairs, refs = [], []
        for _ in range(rounds):
            code = bridge.pairing.open_window().code
            start = time.perf_counter()
            await pair(
                "127.0.0.1", code, inventory=inv, server_name="bench", port=bound.management, pairing_port=bound.pairing
            )
            pairs.append(time.perf_counter() - start)
            start = time.perf_counter()
            pem = der_to_pem(await fetch_server_certificate("127.0.0.1", bound.pairing))
            async with pairing_channel("127.0.0.1", bound.pairing, pem) as channel:
                await pairing_pb2_grpc.PairingStub(channel).GetIdentity(pairing_pb2.GetIdentityRequest())
            refs.append(time.perf_counter() - start)
        await server.stop(0)
        p, r = statistics.median(pairs), statistics.median(refs)
        print(f"| pairing ({rounds} rounds) | median ms | p90 ms | ratio |")
        print("|---|---|---|---|")
        print(
            f"| satctl pair, end to end | {p * 1e3:.1f} | {statistics.quantiles(pairs, n=10)[-1] * 1e3:.1f} "
            f"| {p / r:.2f}x |"
        )
        print(
            f"| reference: TLS probe + channel + GetIdentity | {r * 1e3:.1f} "
            f"| {statistics.quantiles(refs, n=10)[-1] * 1e3:.1f} | 1.00x |"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    asyncio.run(main(parser.parse_args().rounds))
