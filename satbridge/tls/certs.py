"""The satellite identity and the certificates it issues. The only importer of `cryptography`.

The identity is one self-signed ECDSA P-256 certificate with CA:TRUE. It is the TLS server
certificate on both ports and the CA that signs paired clients' certificates. Trust comes from
pinning its SHA-256 fingerprint, never from the clock, so the validity is long and NotBefore is
backdated a day to survive a VM whose clock is behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from satbridge.core.names import TLS_SERVER_NAME, check_peer_name
from satbridge.errors import InvalidArgument

__all__ = ["TLS_SERVER_NAME", "CheckedCsr", "KeyPair"]
_VALIDITY = dt.timedelta(days=365 * 30)
_BACKDATE = dt.timedelta(days=1)


@dataclass(frozen=True)
class KeyPair:
    """A private key and its certificate, both PEM."""

    key_pem: bytes
    cert_pem: bytes

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(self.cert_pem)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(pem: bytes, field: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise InvalidArgument("not a PEM certificate", field=field) from None


def create_identity(now: dt.datetime, hostname: str) -> KeyPair:
    """A fresh self-signed identity: CA:TRUE, certSign, SAN DNS:satbridge."""
    key = _new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"satbridge {hostname}"[:64]),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "satellite identity"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(TLS_SERVER_NAME)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


def fingerprint(cert_pem: bytes) -> bytes:
    """SHA-256 over the certificate's DER (32 raw bytes)."""
    return hashlib.sha256(cert_der(cert_pem)).digest()


def cert_der(cert_pem: bytes) -> bytes:
    return _cert(cert_pem, "certificate").public_bytes(serialization.Encoding.DER)


def der_to_pem(der: bytes) -> bytes:
    try:
        return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    except ValueError:
        raise InvalidArgument("not a DER certificate", field="certificate") from None


def common_name(cert_pem: bytes) -> str:
    attrs = _cert(cert_pem, "certificate").subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = attrs[0].value if attrs else ""
    return value if isinstance(value, str) else value.decode(errors="replace")


def issued_by(cert_pem: bytes, issuer_pem: bytes) -> bool:
    """True when `cert_pem` carries a valid signature of `issuer_pem`'s key."""
    try:
        _cert(cert_pem, "certificate").verify_directly_issued_by(_cert(issuer_pem, "issuer"))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def new_client_key() -> bytes:
    return _key_pem(_new_key())


def make_csr(key_pem: bytes, name: str) -> bytes:
    """A CSR for the client's key, naming the server (CN) in it."""
    check_peer_name(name, field="name")
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidArgument("client key must be an EC key", field="key")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class CheckedCsr:
    der: bytes
    name: str
    request: x509.CertificateSigningRequest


def check_csr(csr_pem: bytes, *, field: str = "csr_pem") -> CheckedCsr:
    """Parse and validate a client CSR: self-signature, EC P-256 or RSA >= 2048, a sane CN."""
    if len(csr_pem) > 16384:
        raise InvalidArgument("CSR larger than 16 KiB", field=field)
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise InvalidArgument("not a PEM certificate signing request", field=field) from None
    if not csr.is_signature_valid:
        raise InvalidArgument("CSR signature does not verify", field=field)
    pub = csr.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        if pub.curve.name not in {"secp256r1", "secp384r1"}:
            raise InvalidArgument(f"EC curve {pub.curve.name} not accepted (use P-256 or P-384)", field=field)
    elif not (hasattr(pub, "key_size") and type(pub).__name__.startswith("RSA") and pub.key_size >= 2048):
        raise InvalidArgument("key must be EC P-256/P-384 or RSA >= 2048 bits", field=field)
    attrs = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(attrs) != 1:
        raise InvalidArgument("CSR subject must have exactly one CN (the server's name)", field=field)
    name = attrs[0].value
    check_peer_name(name if isinstance(name, str) else "", field=f"{field}.subject.CN")
    return CheckedCsr(csr.public_bytes(serialization.Encoding.DER), str(name), csr)


def sign_client(identity: KeyPair, csr: CheckedCsr, now: dt.datetime) -> bytes:
    """Issue the paired server's client certificate (clientAuth), signed by the identity."""
    issuer = _cert(identity.cert_pem, "identity")
    key = serialization.load_pem_private_key(identity.key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidArgument("identity key must be an EC key", field="identity")
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, csr.name)]))
        .issuer_name(issuer.subject)
        .public_key(csr.request.public_key())
        # 127 random bits: unguessable, and never reused by a later pairing.
        .serial_number(secrets.randbits(127) | 1)
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)
