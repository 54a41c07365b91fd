"""Every RPC on both ports x every kind of client certificate x {paired, unpaired}.

Real server, real client, real TLS on loopback. The expectations are written out here, not
derived from the server's own table, so the table itself is under test.
"""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from satbridge.client.session import _options, target
from satbridge.server.auth import HEALTH, REFLECTION, contract_methods
from satbridge.tls import certs
from tests.conftest import Running, pair_with

OK = grpc.StatusCode.OK
# What a paired client gets on the management port (every RPC of v1 is live now; a method
# outside the contract gets UNIMPLEMENTED, see test_unknown_methods).
MANAGEMENT_LIVE = {
    "/satbridge.v1.Pairing/GetIdentity": OK,
    "/satbridge.v1.Pairing/Unpair": OK,
    "/satbridge.v1.Pairing/Pair": grpc.StatusCode.PERMISSION_DENIED,  # pairing port only
    "/satbridge.v1.System/GetStatus": OK,
    "/satbridge.v1.System/WatchEvents": OK,  # its first message (subscribed) comes at once
    "/satbridge.v1.Xcc/GetState": OK,  # installed: false
    **{f"/satbridge.v1.Xcc/{verb}": grpc.StatusCode.FAILED_PRECONDITION for verb in ("Start", "Stop", "Restart")},
    "/satbridge.v1.Firewall/Get": OK,
    "/satbridge.v1.Firewall/Set": grpc.StatusCode.INVALID_ARGUMENT,  # no default action
    "/satbridge.v1.Firewall/Confirm": grpc.StatusCode.INVALID_ARGUMENT,  # no revision
    "/satbridge.v1.Firewall/Reset": OK,
    "/satbridge.v1.Logs/List": OK,
    "/satbridge.v1.Logs/Download": grpc.StatusCode.INVALID_ARGUMENT,  # no name
    "/satbridge.v1.Logs/SupportBundle": OK,
    "/satbridge.v1.Update/BeginUpload": grpc.StatusCode.INVALID_ARGUMENT,  # the empty request names nothing
    "/satbridge.v1.Update/Upload": grpc.StatusCode.INVALID_ARGUMENT,
    "/satbridge.v1.Update/Install": grpc.StatusCode.INVALID_ARGUMENT,
    "/satbridge.v1.Update/GetVersions": OK,
    **{m: OK for m in HEALTH},
    **{m: OK for m in REFLECTION},
}
# The pairing port serves these (to anyone: TLS does not ask for a client certificate there).
PAIRING_SERVED = {
    "/satbridge.v1.Pairing/GetIdentity": OK,
    "/satbridge.v1.Pairing/Pair": grpc.StatusCode.INVALID_ARGUMENT,  # the empty request has no CSR
    **{m: OK for m in HEALTH},
}
CERTS = ("none", "foreign", "revoked", "paired")


def all_methods() -> dict[str, tuple[bool, bool]]:
    methods = dict(contract_methods())
    methods.update({HEALTH[0]: (False, False), HEALTH[1]: (False, True)})
    methods.update({m: (True, True) for m in REFLECTION})
    # Unpair last: in the paired round it is what makes the satellite unpaired.
    return dict(sorted(methods.items(), key=lambda kv: kv[0].endswith("/Unpair")))


def expected(port: str, cert: str, paired: bool, method: str) -> grpc.StatusCode:
    if port == "pairing":
        return PAIRING_SERVED.get(method, grpc.StatusCode.PERMISSION_DENIED)
    if cert in ("none", "foreign"):
        return grpc.StatusCode.UNAVAILABLE  # the TLS handshake refuses it
    if cert == "revoked" or not paired:
        return grpc.StatusCode.UNAUTHENTICATED
    return MANAGEMENT_LIVE.get(method, grpc.StatusCode.UNIMPLEMENTED)


async def call(channel: grpc.aio.Channel, method: str, streaming: tuple[bool, bool]) -> grpc.StatusCode:
    raw = {"request_serializer": bytes, "response_deserializer": bytes}
    try:
        if streaming == (False, False):
            await channel.unary_unary(method, **raw)(b"", timeout=10)
        elif streaming == (True, False):
            await channel.stream_unary(method, **raw)(iter([b""]), timeout=10)
        else:
            if streaming == (False, True):
                rpc = channel.unary_stream(method, **raw)(b"", timeout=10)
            else:
                rpc = channel.stream_stream(method, **raw)(timeout=10)
                await rpc.write(b"")
            first = await rpc.read()
            if first is grpc.aio.EOF:
                return await rpc.code()
            rpc.cancel()
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return OK


def channel_for(run: Running, port: str, identity_pem: bytes, chain: tuple[bytes, bytes] | None) -> grpc.aio.Channel:
    key, cert = chain if chain else (None, None)
    creds = grpc.ssl_channel_credentials(root_certificates=identity_pem, private_key=key, certificate_chain=cert)
    number = run.bound.management if port == "management" else run.bound.pairing
    return grpc.aio.secure_channel(target("127.0.0.1", number), creds, options=_options())


async def test_auth_matrix(running, inventory, tmp_path):
    revoked = await pair_with(running, inventory, server_name="old-server")
    revoked_cert = revoked.cert_pem.encode()
    sat = await pair_with(running, inventory, server_name="new-server")  # replaces the old one
    key = inventory.client_key()
    now = dt.datetime.now(dt.UTC)
    foreign_ca = certs.create_identity(now, "foreign")
    foreign_key = certs.new_client_key()
    foreign_cert = certs.sign_client(foreign_ca, certs.check_csr(certs.make_csr(foreign_key, "mallory")), now)
    chains = {
        "none": None,
        "foreign": (foreign_key, foreign_cert),
        "revoked": (key, revoked_cert),
        "paired": (key, sat.cert_pem.encode()),
    }
    identity_pem = sat.identity_pem.encode()
    failures = []
    cells = 0
    for paired in (True, False):
        assert running.bridge.pairing.status().paired is paired
        for port in ("pairing", "management"):
            for cert in CERTS:
                async with channel_for(running, port, identity_pem, chains[cert]) as channel:
                    for method, streaming in all_methods().items():
                        want = expected(port, cert, paired, method)
                        got = await call(channel, method, streaming)
                        cells += 1
                        if got != want:
                            failures.append(
                                f"{'paired' if paired else 'unpaired'} {port} {cert} {method}: {got} != {want}"
                            )
    assert cells == 2 * 2 * 4 * len(all_methods())
    assert not failures, "\n".join(failures)


async def test_unimplemented_comes_only_after_auth(running, inventory):
    """A revoked certificate learns nothing about which RPCs exist."""
    sat = await pair_with(running, inventory)
    running.bridge.pairing.unpair(by="test")
    chain = (inventory.client_key(), sat.cert_pem.encode())
    async with channel_for(running, "management", sat.identity_pem.encode(), chain) as channel:
        for method in ("/satbridge.v1.Xcc/Start", "/satbridge.v1.Nope/Nothing", "/other.Service/Method"):
            assert await call(channel, method, (False, False)) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("method", ["/satbridge.v1.Nope/Nothing", "/other.Service/Method"])
async def test_unknown_methods(running, inventory, method):
    sat = await pair_with(running, inventory)
    chain = (inventory.client_key(), sat.cert_pem.encode())
    async with channel_for(running, "management", sat.identity_pem.encode(), chain) as channel:
        assert await call(channel, method, (False, False)) == grpc.StatusCode.UNIMPLEMENTED
    async with channel_for(running, "pairing", sat.identity_pem.encode(), None) as channel:
        assert await call(channel, method, (False, False)) == grpc.StatusCode.PERMISSION_DENIED
