"""docs/PROTOCOL.md is enough to write a client: pairing implemented from the document alone.

Nothing here imports satbridge.tls, satbridge.core.pairing or satbridge.client: the TLS read,
the code's normalization, K, the CSR and both proofs are written again from the document, with
`ssl`, `hashlib`, `hmac` and `cryptography`. Only the generated stubs (the .proto) are shared.
If the document and the bridge disagree, this test fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from satbridge.api.v1 import pairing_pb2, pairing_pb2_grpc, system_pb2, system_pb2_grpc

DOC = Path(__file__).resolve().parent.parent / "docs" / "PROTOCOL.md"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def normalize(code: str) -> str:
    """Section 2.1, step by step."""
    text = code.upper()
    text = "".join(ch for ch in text if ch not in " \t-")
    text = text.replace("O", "0").replace("I", "1").replace("L", "1")
    assert len(text) == 16
    assert all(ch in ALPHABET for ch in text)
    return text


def read_identity(host: str, port: int) -> bytes:
    """Section 1: an unverified TLS handshake, ALPN h2; the DER the server presents."""
    import socket

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection((host, port), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der
    return der


def test_the_document_states_what_this_test_uses():
    text = DOC.read_text()
    for needle in (
        '"satbridge-pair-code-v1" || normalized_code',
        '"satbridge-pair-v1" || fp || SHA-256(csr_der) || challenge',
        '"satbridge-pair-v1-satellite" || fp || SHA-256(csr_der)',
        "|| challenge || SHA-256(client_certificate_der)",
        "replace `O` by `0`, and `I` and `L` by `1`",
        "grpc.ssl_target_name_override=satbridge",
    ):
        assert needle in text, needle
    readme = (DOC.parent.parent / "README.md").read_text()
    assert "normalized_code" in readme
    assert "docs/PROTOCOL.md" in readme


@pytest.mark.parametrize("shown", ["lower", "spaces", "look-alikes"])
async def test_pairing_from_the_document_alone(running, shown):
    code = running.bridge.pairing.open_window().code
    typed = {
        "lower": code.lower(),
        "spaces": code.replace("-", " "),
        "look-alikes": code.replace("0", "O").replace("1", "l"),
    }[shown]
    host, port = "127.0.0.1", running.bound.pairing

    identity_der = await asyncio.to_thread(read_identity, host, port)
    fp = hashlib.sha256(identity_der).digest()
    identity_pem = x509.load_der_x509_certificate(identity_der).public_bytes(serialization.Encoding.PEM)
    key = hashlib.sha256(b"satbridge-pair-code-v1" + normalize(typed).encode("ascii")).digest()

    client_key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doc-client")]))
        .sign(client_key, hashes.SHA256())
    )
    csr_der = csr.public_bytes(serialization.Encoding.DER)
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()

    options = [("grpc.ssl_target_name_override", "satbridge"), ("grpc.use_local_subchannel_pool", 1)]
    creds = grpc.ssl_channel_credentials(root_certificates=identity_pem)
    async with grpc.aio.secure_channel(f"{host}:{port}", creds, options=options) as channel:
        stub = pairing_pb2_grpc.PairingStub(channel)
        ident = await stub.GetIdentity(pairing_pb2.GetIdentityRequest(), timeout=10)
        assert ident.identity_fingerprint == fp.hex()
        challenge = ident.pairing_challenge
        assert len(challenge) == 32
        proof = hmac.new(
            key, b"satbridge-pair-v1" + fp + hashlib.sha256(csr_der).digest() + challenge, hashlib.sha256
        ).digest()
        answer = await stub.Pair(pairing_pb2.PairRequest(csr_pem=csr_pem, challenge=challenge, proof=proof), timeout=10)

    cert = x509.load_pem_x509_certificate(answer.client_certificate_pem.encode())
    cert_der = cert.public_bytes(serialization.Encoding.DER)
    expected = hmac.new(
        key,
        b"satbridge-pair-v1-satellite"
        + fp
        + hashlib.sha256(csr_der).digest()
        + challenge
        + hashlib.sha256(cert_der).digest(),
        hashlib.sha256,
    ).digest()
    assert hmac.compare_digest(expected, answer.satellite_proof)
    cert.verify_directly_issued_by(x509.load_der_x509_certificate(identity_der))

    # Section 1: the management port with the pin as the only root and the issued certificate.
    key_pem = client_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    mtls = grpc.ssl_channel_credentials(
        root_certificates=identity_pem, private_key=key_pem, certificate_chain=answer.client_certificate_pem.encode()
    )
    async with grpc.aio.secure_channel(f"{host}:{running.bound.management}", mtls, options=options) as channel:
        status = await system_pb2_grpc.SystemStub(channel).GetStatus(system_pb2.GetStatusRequest(), timeout=10)
    assert status.pairing.paired
    assert status.pairing.peer_name == "doc-client"
    assert status.instance_id == answer.instance_id


async def test_the_code_as_displayed_is_not_the_key(running):
    """The README's old formula (the code with its dashes) is refused: normalization matters."""
    code = running.bridge.pairing.open_window().code
    host, port = "127.0.0.1", running.bound.pairing
    identity_der = await asyncio.to_thread(read_identity, host, port)
    fp = hashlib.sha256(identity_der).digest()
    identity_pem = x509.load_der_x509_certificate(identity_der).public_bytes(serialization.Encoding.PEM)
    wrong = hashlib.sha256(b"satbridge-pair-code-v1" + code.encode()).digest()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doc-client")]))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    csr_der = csr.public_bytes(serialization.Encoding.DER)
    options = [("grpc.ssl_target_name_override", "satbridge"), ("grpc.use_local_subchannel_pool", 1)]
    creds = grpc.ssl_channel_credentials(root_certificates=identity_pem)
    async with grpc.aio.secure_channel(f"{host}:{port}", creds, options=options) as channel:
        stub = pairing_pb2_grpc.PairingStub(channel)
        challenge = (await stub.GetIdentity(pairing_pb2.GetIdentityRequest(), timeout=10)).pairing_challenge
        proof = hmac.new(
            wrong, b"satbridge-pair-v1" + fp + hashlib.sha256(csr_der).digest() + challenge, hashlib.sha256
        ).digest()
        request = pairing_pb2.PairRequest(
            csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode(), challenge=challenge, proof=proof
        )
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.Pair(request, timeout=10)
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_management_status_codes_as_the_document_lists_them(running, tmp_path):
    """Red team (issue 20): section 3's table, called with the generated stubs only. An
    `upload_id` that is not 64 hex characters was INVALID_ARGUMENT where the table said only
    NOT_FOUND, and Xcc's timeout_seconds over 600 was not in it."""
    from satbridge.api.v1 import (
        firewall_pb2,
        firewall_pb2_grpc,
        logs_pb2,
        logs_pb2_grpc,
        update_pb2,
        update_pb2_grpc,
        xcc_pb2,
        xcc_pb2_grpc,
    )
    from satbridge.client.inventory import Inventory
    from tests.conftest import pair_with

    sat = await pair_with(running, Inventory(tmp_path / "ctl"))
    key_pem = (tmp_path / "ctl" / "client.key").read_bytes()
    mtls = grpc.ssl_channel_credentials(
        root_certificates=sat.identity_pem.encode(), private_key=key_pem, certificate_chain=sat.cert_pem.encode()
    )
    options = [("grpc.ssl_target_name_override", "satbridge")]
    text = DOC.read_text()
    async with grpc.aio.secure_channel(f"127.0.0.1:{running.bound.management}", mtls, options=options) as channel:
        logs, update = logs_pb2_grpc.LogsStub(channel), update_pb2_grpc.UpdateStub(channel)

        async def status_of(make) -> tuple[grpc.StatusCode, str]:
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await make()
            return exc.value.code(), exc.value.details() or ""

        async def download(name: str) -> list[object]:
            return [c async for c in logs.Download(logs_pb2.DownloadLogRequest(name=name), timeout=10)]

        async def install(upload_id: str) -> list[object]:
            return [e async for e in update.Install(update_pb2.InstallRequest(upload_id=upload_id), timeout=10)]

        async def upload(upload_id: str) -> object:
            chunk = update_pb2.UploadChunk(upload_id=upload_id, offset=0, data=b"x")
            return await update.Upload(iter([chunk]), timeout=10)

        assert (await status_of(lambda: download("xcc/no-such.log")))[0] == grpc.StatusCode.NOT_FOUND
        code, message = await status_of(lambda: download("../x"))
        assert (code, message.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "name")
        assert (await status_of(lambda: upload("ab" * 32)))[0] == grpc.StatusCode.NOT_FOUND
        assert (await status_of(lambda: install("ab" * 32)))[0] == grpc.StatusCode.NOT_FOUND
        for call in (lambda: upload("nope"), lambda: install("nope")):
            code, message = await status_of(call)
            assert (code, message.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "upload_id")
        assert "not 64 lower-case hex characters" in text
        code, message = await status_of(
            lambda: xcc_pb2_grpc.XccStub(channel).Start(xcc_pb2.XccControlRequest(timeout_seconds=601), timeout=10)
        )
        assert (code, message.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "timeout_seconds")
        assert "`INVALID_ARGUMENT` `timeout_seconds` over 600" in text
        code, message = await status_of(
            lambda: firewall_pb2_grpc.FirewallStub(channel).Confirm(
                firewall_pb2.ConfirmFirewallRequest(revision=0), timeout=10
            )
        )
        assert (code, message.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "revision")
