"""Pairing over the real pairing port: codes, limits, replay, a man in the middle, revocation."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import secrets
from dataclasses import replace

import grpc
import pytest

from satbridge.api.v1 import pairing_pb2, pairing_pb2_grpc
from satbridge.client.session import _options, connect, pair, target
from satbridge.core import pairing as proofs
from satbridge.core.addresses import ListenAddress
from satbridge.errors import FailedPrecondition, PermissionDenied, Unauthenticated
from satbridge.tls import certs
from satbridge.tls.handshake import fetch_server_certificate
from tests.conftest import PYTHON, Running, loopback_config, pair_with, serve_bridge
from tests.server.mitm import TlsMitm


async def pair_code(run: Running, inv, code: str, port: int | None = None):
    return await pair(
        "127.0.0.1",
        code,
        inventory=inv,
        server_name="central",
        port=run.bound.management,
        pairing_port=port or run.bound.pairing,
    )


def audit_events(run: Running) -> list[str]:
    lines = run.bridge.config.paths.audit_log.read_text().splitlines()
    return [json.loads(line)["event"] for line in lines]


async def test_right_code_pairs_and_management_works(running, inventory):
    sat = await pair_with(running, inventory)
    assert inventory.path.exists()
    assert sat.fingerprint == running.bridge.identity.current().fingerprint.hex()
    async with connect(sat, inventory) as client:
        status = await client.status()
    assert status.pairing.paired
    assert status.pairing.peer_name == "central"
    assert status.state_generation >= 1
    assert status.instance_id
    assert status.hostname
    assert status.addresses
    assert status.memory.total_bytes
    assert status.disk.total_bytes
    assert "paired" in audit_events(running)


async def test_wrong_codes_lock_out_their_address_and_the_window_stays_open(running, inventory):
    """Issue 16: five wrong codes from one address closed the admin's window for everyone. Now
    that address is locked out for the window's life (audited once) and the window stays open."""
    right = running.bridge.pairing.open_window().code
    wrong = proofs.format_code(secrets.token_bytes(10))
    for _ in range(5):
        with pytest.raises(PermissionDenied):
            await pair_code(running, inventory, wrong)
    with pytest.raises(PermissionDenied, match="may not try again"):
        await pair_code(running, inventory, right)  # even the right code, from this address
    status = running.bridge.pairing.status()
    assert not status.paired
    assert status.window_open
    assert status.attempts_left == running.bridge.config.pairing.max_failures - 5
    events = audit_events(running)
    assert events.count("pairing-failed") == 5
    assert events.count("pairing-source-locked") == 1
    assert "pairing-window-closed" not in events
    assert not inventory.path.exists(), "a failed pairing saves nothing"


async def test_one_address_burning_attempts_cannot_stop_an_honest_pairing_from_another(root, inventory):
    """Over real gRPC on a dual-stack pairing port: 127.0.0.1 guesses until it is locked out
    (the red team's 5 wrong Pairs within 100 ms of the window opening), then ::1 pairs."""
    config = loopback_config(root)
    config = replace(config, server=replace(config.server, pairing_listen=ListenAddress("::", 0)))
    async with serve_bridge(config) as run:
        right = run.bridge.pairing.open_window().code
        wrong = proofs.format_code(secrets.token_bytes(10))
        for _ in range(8):
            with pytest.raises(PermissionDenied):
                await pair_code(run, inventory, wrong)
        sat = await pair(
            "::1",
            right,
            inventory=inventory,
            server_name="central",
            port=run.bound.management,
            pairing_port=run.bound.pairing,
        )
        assert run.bridge.pairing.status().paired
        assert sat.fingerprint == run.bridge.identity.current().fingerprint.hex()
        assert audit_events(run).count("pairing-failed") == 5, "a locked-out address's tries are not counted"


def test_many_addresses_close_the_window_and_status_and_show_name_them(running):
    """The global ceiling: only a distributed guess closes the window, and `pair-window show`,
    status and the console then say who closed it and when."""
    pairing = running.bridge.pairing
    pairing.open_window()
    ceiling = running.bridge.config.pairing.max_failures
    csr = certs.make_csr(certs.new_client_key(), "guess")
    for i in range(ceiling):
        with pytest.raises(PermissionDenied):
            pairing.pair(csr, b"c" * 32, b"p" * 32, peer=f"ipv4:198.51.100.{i % 200 + 1}:4000")
    status = pairing.status()
    assert not status.window_open
    closed = status.closed_for_failures
    assert closed is not None
    assert len(closed.failures) == min(ceiling, 200)
    with pytest.raises(FailedPrecondition, match=r"by wrong codes from .* ipv4:198\.51\.100\.1 "):
        pairing.show_window()
    assert "pairing-window-closed" in audit_events(running)
    pairing.open_window()
    assert pairing.status().closed_for_failures is None


async def test_expired_code_fails(running, inventory):
    code = running.bridge.pairing.open_window().code
    running.clock.advance(15 * 60 + 1)
    with pytest.raises(FailedPrecondition):
        await pair_code(running, inventory, code)


async def test_pair_outside_a_window_is_a_failed_precondition(running, inventory):
    running.bridge.pairing.close_window()
    with pytest.raises(FailedPrecondition):
        await pair_code(running, inventory, proofs.format_code(secrets.token_bytes(10)))


async def test_proof_replayed_on_another_connection_fails(running, inventory):
    code = running.bridge.pairing.open_window().code
    der = await fetch_server_certificate("127.0.0.1", running.bound.pairing)
    identity_pem, fp = certs.der_to_pem(der), hashlib.sha256(der).digest()
    csr_pem = certs.make_csr(inventory.client_key(), "central")
    creds = grpc.ssl_channel_credentials(root_certificates=identity_pem)
    # A private subchannel pool: a new TCP+TLS connection, not a shared one.
    opts = [*_options(), ("grpc.use_local_subchannel_pool", 1)]
    where = target("127.0.0.1", running.bound.pairing)
    async with grpc.aio.secure_channel(where, creds, options=opts) as first:
        ident = await pairing_pb2_grpc.PairingStub(first).GetIdentity(pairing_pb2.GetIdentityRequest())
        proof = proofs.client_proof(proofs.code_key(code), fp, certs.check_csr(csr_pem).der, ident.pairing_challenge)
        request = pairing_pb2.PairRequest(csr_pem=csr_pem.decode(), challenge=ident.pairing_challenge, proof=proof)
        async with grpc.aio.secure_channel(where, creds, options=opts) as second:
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await pairing_pb2_grpc.PairingStub(second).Pair(request)
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "challenge" in exc.value.details()
        state = running.bridge.pairing.status()
        assert not state.paired
        assert state.attempts_left == running.bridge.config.pairing.max_failures, "a replay costs no attempt"
        # The replay on another connection did not touch the challenge: it belongs to `first`.
        await pairing_pb2_grpc.PairingStub(first).Pair(request)
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await pairing_pb2_grpc.PairingStub(first).Pair(request)
        assert again.value.code() == grpc.StatusCode.PERMISSION_DENIED, "a challenge is single use"
    assert running.bridge.pairing.status().paired


async def raw_pair(port: int, code: str, key_pem: bytes) -> pairing_pb2.PairResponse:
    """What a client does, step by step, with no checks of its own: it trusts whatever
    certificate the handshake shows (a MITM that also rewrote GetIdentity looks like this)."""
    der = await fetch_server_certificate("127.0.0.1", port)
    creds = grpc.ssl_channel_credentials(root_certificates=certs.der_to_pem(der))
    csr_pem = certs.make_csr(key_pem, "central")
    async with grpc.aio.secure_channel(target("127.0.0.1", port), creds, options=_options()) as channel:
        stub = pairing_pb2_grpc.PairingStub(channel)
        ident = await stub.GetIdentity(pairing_pb2.GetIdentityRequest())
        fp = hashlib.sha256(der).digest()
        proof = proofs.client_proof(proofs.code_key(code), fp, certs.check_csr(csr_pem).der, ident.pairing_challenge)
        return await stub.Pair(
            pairing_pb2.PairRequest(csr_pem=csr_pem.decode(), challenge=ident.pairing_challenge, proof=proof)
        )


@pytest.fixture
async def mitm(running, tmp_path):
    proxy = TlsMitm(running.bound.pairing, certs.create_identity(dt.datetime.now(dt.UTC), "mallory"), tmp_path)
    port = await proxy.start()
    try:
        yield proxy, port
    finally:
        await proxy.stop()


async def test_man_in_the_middle_fails_at_the_satellite(running, inventory, mitm):
    """The client's proof binds the certificate it saw (the proxy's): the bridge refuses it."""
    proxy, port = mitm
    code = running.bridge.pairing.open_window().code
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await raw_pair(port, code, inventory.client_key())
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert proxy.connections >= 1, "the traffic really went through the proxy"
    assert not running.bridge.pairing.status().paired
    assert running.bridge.pairing.status().attempts_left == running.bridge.config.pairing.max_failures - 1
    assert "pairing-failed" in audit_events(running)
    # The same steps straight to the bridge pair: the proxy was the only difference.
    await raw_pair(running.bound.pairing, code, inventory.client_key())
    assert running.bridge.pairing.status().paired


async def test_man_in_the_middle_fails_at_the_client(running, inventory, mitm):
    """satctl itself notices that the identity behind the proxy is not the one it pinned."""
    proxy, port = mitm
    code = running.bridge.pairing.open_window().code
    with pytest.raises(PermissionDenied):
        await pair_code(running, inventory, code, port=port)
    assert proxy.connections >= 1
    assert not running.bridge.pairing.status().paired
    assert not inventory.path.exists(), "nothing saved"


class ForgingSatellite(pairing_pb2_grpc.PairingServicer):
    """A man in the middle that answers Pair itself: it cannot make the satellite's proof."""

    def __init__(self, identity: certs.KeyPair) -> None:
        self.identity = identity

    async def GetIdentity(self, request, context):
        return pairing_pb2.GetIdentityResponse(
            identity_fingerprint=self.identity.fingerprint.hex(), pairing_challenge=b"x" * 32, hostname="fake"
        )

    async def Pair(self, request, context):
        csr = certs.check_csr(request.csr_pem.encode())
        cert = certs.sign_client(self.identity, csr, dt.datetime.now(dt.UTC))
        return pairing_pb2.PairResponse(
            client_certificate_pem=cert.decode(),
            identity_certificate_pem=self.identity.cert_pem.decode(),
            satellite_proof=secrets.token_bytes(32),
        )


async def test_client_refuses_an_answer_without_the_satellite_proof(inventory):
    identity = certs.create_identity(dt.datetime.now(dt.UTC), "fake")
    server = grpc.aio.server()
    pairing_pb2_grpc.add_PairingServicer_to_server(ForgingSatellite(identity), server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(identity.key_pem, identity.cert_pem)]))
    await server.start()
    try:
        with pytest.raises(PermissionDenied, match="man in the middle"):
            await pair("127.0.0.1", "K7QM-9T2X-HF4D-PW8R", inventory=inventory, server_name="c", pairing_port=port)
    finally:
        await server.stop(0)
    assert not inventory.path.exists()


async def test_unpair_revokes_at_the_next_call(running, inventory):
    sat = await pair_with(running, inventory)
    async with connect(sat, inventory) as client:
        await client.status()
        await client.unpair()
        with pytest.raises(Unauthenticated):
            await client.status()
    assert "disconnected" in audit_events(running)


async def test_console_disconnect_revokes_without_restart(running, inventory, root):
    sat = await pair_with(running, inventory)
    async with connect(sat, inventory) as client:
        await client.status()
        proc = await asyncio.create_subprocess_exec(PYTHON, "-m", "satbridge", "--root", str(root), "disconnect")
        assert await proc.wait() == 0
        with pytest.raises(Unauthenticated):
            await client.status()


async def test_console_window_pairs_with_the_running_server(running, inventory, root):
    """The code comes from another process (the console), as it will on the appliance."""
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "satbridge",
        "--root",
        str(root),
        "pair-window",
        "open",
        "--json",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    window = json.loads(out)
    assert window["fingerprint"] == running.bridge.identity.current().fingerprint.hex()
    await pair_code(running, inventory, window["code"])
    assert running.bridge.pairing.status().paired


async def test_pairing_survives_a_restart(running, inventory):
    sat = await pair_with(running, inventory)
    await running.restart()
    async with connect(sat, inventory) as client:
        status = await client.status()
    assert status.pairing.paired


async def test_identity_is_made_once_and_kept_private(running, root):
    state = running.bridge.config.paths.state_dir
    assert (state / "identity.key").stat().st_mode & 0o777 == 0o600
    before = (state / "identity.crt").read_bytes()
    await running.restart()
    assert (state / "identity.crt").read_bytes() == before
