"""Ed25519 signatures over package manifests (the vendor signs, the bridge verifies)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from satbridge.errors import InvalidArgument


def new_signing_key() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a new vendor key."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def sign(private_pem: bytes, data: bytes) -> bytes:
    try:
        key = serialization.load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError):
        raise InvalidArgument("not a PEM private key", field="key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidArgument("the signing key must be Ed25519 (satctl package keygen)", field="key")
    return key.sign(data)


def load_public(pem: bytes, *, field: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise InvalidArgument("not a PEM public key", field=field) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidArgument("not an Ed25519 public key", field=field)
    return key


def verify_any(keys: Iterable[Ed25519PublicKey], signature: bytes, data: bytes) -> bool:
    """True when one of the trusted keys made `signature` over `data`."""
    for key in keys:
        try:
            key.verify(signature, data)
        except InvalidSignature:
            continue
        return True
    return False


def load_trusted(directory: Path) -> list[Ed25519PublicKey]:
    """Every *.pub in the trusted-keys directory (none: nothing verifies)."""
    if not directory.is_dir():
        return []
    return [load_public(path.read_bytes(), field=str(path)) for path in sorted(directory.glob("*.pub"))]
