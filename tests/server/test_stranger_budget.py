"""Issue 16: what a stranger on the pairing port can hold, and for how long (real gRPC over TLS
on loopback, in-process bridge with short deadlines so each case takes seconds)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from satbridge.api.v1 import pairing_pb2, pairing_pb2_grpc
from satbridge.client.session import _options, target
from satbridge.config import StrangerLimits
from satbridge.core import pairing as proofs
from satbridge.server.app import PAIRING_AGE_GRACE_SECONDS, pairing_connection_cap
from satbridge.tls import certs
from satbridge.tls.handshake import fetch_server_certificate
from tests.conftest import Running, loopback_config, serve_bridge

LIMITS = StrangerLimits(handshake_seconds=1.0, idle_seconds=2.0, max_age_seconds=3.0)
SLACK = 3.0  # seconds of scheduling noise on a busy 2-core machine


@pytest.fixture
async def strict(root: Path) -> AsyncIterator[Running]:
    config = loopback_config(root)
    async with serve_bridge(replace(config, server=replace(config.server, pairing_limits=LIMITS))) as run:
        yield run


async def closed_after(reader: asyncio.StreamReader, bound: float) -> float:
    """Read until the server closes; the seconds it took (fails past `bound`)."""
    start = time.monotonic()
    async with asyncio.timeout(bound):
        while await reader.read(4096):
            pass
    return time.monotonic() - start


def _tls() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    return ctx


async def identity_channel(port: int) -> grpc.aio.Channel:
    pem = certs.der_to_pem(await fetch_server_certificate("127.0.0.1", port))
    creds = grpc.ssl_channel_credentials(root_certificates=pem)
    return grpc.aio.secure_channel(target("127.0.0.1", port), creds, options=_options())


async def test_a_tcp_connection_that_never_starts_tls_is_closed(strict):
    reader, writer = await asyncio.open_connection("127.0.0.1", strict.bound.pairing)
    try:
        await closed_after(reader, LIMITS.handshake_seconds + SLACK)
    finally:
        writer.transport.abort()


async def test_a_tls_connection_without_the_http2_preface_is_closed(strict):
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", strict.bound.pairing, ssl=_tls(), server_hostname="satbridge"
    )
    try:
        await closed_after(reader, LIMITS.handshake_seconds + SLACK)
    finally:
        writer.transport.abort()


async def test_an_idle_http2_session_is_closed(strict):
    async with await identity_channel(strict.bound.pairing) as channel:
        await pairing_pb2_grpc.PairingStub(channel).GetIdentity(pairing_pb2.GetIdentityRequest())
        start = time.monotonic()
        async with asyncio.timeout(LIMITS.idle_seconds + SLACK):
            while channel.get_state() is grpc.ChannelConnectivity.READY:  # noqa: ASYNC110 - grpc has no event
                await asyncio.sleep(0.1)
        assert time.monotonic() - start >= LIMITS.idle_seconds * 0.5


async def _never() -> AsyncIterator[bytes]:
    await asyncio.sleep(3600)
    yield b""  # pragma: no cover


def headers_only(channel: grpc.aio.Channel, method: str) -> grpc.aio.StreamUnaryCall:
    """A call that sends its headers and never a message (the server waits for one)."""
    call = channel.stream_unary(method, request_serializer=bytes, response_deserializer=bytes)
    return call(_never())


async def test_a_stream_that_sends_only_headers_dies_with_its_connection(strict):
    async with await identity_channel(strict.bound.pairing) as channel:
        call = headers_only(channel, "/satbridge.v1.Pairing/Pair")
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            async with asyncio.timeout(LIMITS.max_age_seconds + PAIRING_AGE_GRACE_SECONDS + SLACK):
                await call
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_streams_per_connection_are_few(strict):
    """grpc's default is 2**32-1 streams per connection; the pairing port allows 4, so a fifth
    call on the same connection waits for a slot instead of costing the bridge memory."""
    async with await identity_channel(strict.bound.pairing) as channel:
        await pairing_pb2_grpc.PairingStub(channel).GetIdentity(pairing_pb2.GetIdentityRequest())
        hung = [headers_only(channel, "/satbridge.v1.Pairing/Pair") for _ in range(4)]
        await asyncio.sleep(0.3)
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
        assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        for call in hung:
            call.cancel()


async def test_a_getidentity_storm_cannot_evict_an_honest_challenge(running, inventory):
    """Case 3: 1040 GetIdentity calls from other connections between an honest client's
    GetIdentity and its Pair; the honest Pair still succeeds."""
    code = running.bridge.pairing.open_window().code
    port = running.bound.pairing
    der = await fetch_server_certificate("127.0.0.1", port)
    csr_pem = certs.make_csr(inventory.client_key(), "central")
    async with await identity_channel(port) as honest:
        stub = pairing_pb2_grpc.PairingStub(honest)
        ident = await stub.GetIdentity(pairing_pb2.GetIdentityRequest())

        async def storm() -> list[grpc.StatusCode]:
            codes = []
            async with await identity_channel(port) as channel:
                flood = pairing_pb2_grpc.PairingStub(channel)
                for _ in range(52):
                    try:
                        await flood.GetIdentity(pairing_pb2.GetIdentityRequest())
                        codes.append(grpc.StatusCode.OK)
                    except grpc.aio.AioRpcError as exc:  # all from 127.0.0.1: refused past 8 connections
                        codes.append(exc.code())
            return codes

        codes = {c for got in await asyncio.gather(*(storm() for _ in range(20))) for c in got}
        assert codes <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        proof = proofs.client_proof(
            proofs.code_key(code),
            certs.fingerprint(certs.der_to_pem(der)),
            certs.check_csr(csr_pem).der,
            ident.pairing_challenge,
        )
        answer = await stub.Pair(
            pairing_pb2.PairRequest(csr_pem=csr_pem.decode(), challenge=ident.pairing_challenge, proof=proof)
        )
    assert answer.client_certificate_pem
    assert running.bridge.pairing.status().paired


def test_the_connection_cap_leaves_descriptors_to_the_management_port():
    limits = StrangerLimits(connections=4096)
    assert pairing_connection_cap(limits, nofile=1024) == 512
    assert pairing_connection_cap(limits, nofile=16384) == 4096
    assert pairing_connection_cap(StrangerLimits(connections=128), nofile=1024) == 128
    assert pairing_connection_cap(limits, nofile=100) == 8, "a floor, so pairing still works"


async def test_challenges_of_closed_connections_do_not_lock_an_address_out(running, inventory):
    """Red team finding 5: 8 GetIdentity calls (each on a connection that then closed) denied the
    whole address its pairing for 125 s. A challenge dies with its connection: the honest admin,
    from the same address, pairs at once."""
    port = running.bound.pairing
    for _ in range(12):
        async with await identity_channel(port) as channel:
            await pairing_pb2_grpc.PairingStub(channel).GetIdentity(pairing_pb2.GetIdentityRequest())
    code = running.bridge.pairing.open_window().code
    der = await fetch_server_certificate("127.0.0.1", port)
    csr_pem = certs.make_csr(inventory.client_key(), "central")
    async with await identity_channel(port) as honest:
        stub = pairing_pb2_grpc.PairingStub(honest)
        ident = await stub.GetIdentity(pairing_pb2.GetIdentityRequest())
        assert ident.pairing_challenge
        proof = proofs.client_proof(
            proofs.code_key(code),
            certs.fingerprint(certs.der_to_pem(der)),
            certs.check_csr(csr_pem).der,
            ident.pairing_challenge,
        )
        await stub.Pair(
            pairing_pb2.PairRequest(csr_pem=csr_pem.decode(), challenge=ident.pairing_challenge, proof=proof)
        )
    assert running.bridge.pairing.status().paired
