"""A stranger flooding the pairing port, as a process of its own (it raises its own descriptor
limit, never the test's): raw TCP connections, TLS handshakes that never send the HTTP/2
preface, headers-only streams, and a GetIdentity storm.

    python -m tests.server.flood PORT --raw N --tls N --streams N --identity N [--keep]

It prints "flooding" once everything is open, holds it until stdin closes, then lets go. With
--keep, every raw connection the server closes is opened again at once (as a stranger would, to
keep the port's slots taken), until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import ssl
import sys
from collections.abc import AsyncIterator

import grpc

from satbridge.api.v1 import pairing_pb2, pairing_pb2_grpc
from satbridge.client.session import _options, target
from satbridge.tls import certs
from satbridge.tls.handshake import fetch_server_certificate


async def _never() -> AsyncIterator[bytes]:
    await asyncio.sleep(3600)
    yield b""  # pragma: no cover


async def _keep_raw(port: int, stop: asyncio.Event) -> None:
    """One raw TCP connection, opened again whenever the server closes it."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        with contextlib.suppress(OSError):
            read = asyncio.ensure_future(reader.read(1))
            halt = asyncio.ensure_future(stop.wait())
            await asyncio.wait({read, halt}, return_when=asyncio.FIRST_COMPLETED)
            read.cancel()
            halt.cancel()
        writer.transport.abort()


async def keep(port: int, raw: int) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(_keep_raw(port, stop)) for _ in range(raw)]
    await asyncio.sleep(1.0)
    print("flooding", raw, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


async def main(port: int, raw: int, tls: int, streams: int, identity: int) -> None:
    # The gRPC parts first: once the raw connections fill the port's cap, nothing more gets in.
    pem = certs.der_to_pem(await fetch_server_certificate("127.0.0.1", port))
    creds = grpc.ssl_channel_credentials(root_certificates=pem)
    channels = [grpc.aio.secure_channel(target("127.0.0.1", port), creds, options=_options()) for _ in range(8)]
    # Four streams per connection is all the port allows (more would only queue in this client).
    hung = [grpc.aio.secure_channel(target("127.0.0.1", port), creds, options=_options()) for _ in range(streams // 4)]
    calls = [
        ch.stream_unary("/satbridge.v1.Pairing/Pair", request_serializer=bytes, response_deserializer=bytes)(_never())
        for ch in hung
        for _ in range(4)
    ]

    async def storm(ch: grpc.aio.Channel) -> None:
        stub = pairing_pb2_grpc.PairingStub(ch)
        for _ in range(identity // len(channels)):
            with contextlib.suppress(grpc.aio.AioRpcError):
                await stub.GetIdentity(pairing_pb2.GetIdentityRequest(), timeout=5)

    await asyncio.gather(*(storm(ch) for ch in channels))
    held: list[asyncio.StreamWriter] = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    for _ in range(tls):
        with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
            conn = asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="x")
            held.append((await asyncio.wait_for(conn, 5))[1])
    for _ in range(raw):
        with contextlib.suppress(OSError):
            held.append((await asyncio.open_connection("127.0.0.1", port))[1])
    print("flooding", len(held), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for call in calls:
        call.cancel()
    for writer in held:
        writer.transport.abort()
    for ch in channels + hung:
        await ch.close()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    for name in ("raw", "tls", "streams", "identity"):
        parser.add_argument(f"--{name}", type=int, default=0)
    parser.add_argument("--keep", action="store_true")
    a = parser.parse_args()
    asyncio.run(keep(a.port, a.raw) if a.keep else main(a.port, a.raw, a.tls, a.streams, a.identity))
