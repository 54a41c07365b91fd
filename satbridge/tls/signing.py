"""Ed25519 signatures over package manifests (the vendor signs, the bridge verifies)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
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
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidArgument("not a PEM private key", field="key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidArgument("the signing key must be Ed25519 (satctl package keygen)", field="key")
    return key.sign(data)


def load_public(pem: bytes, *, field: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidArgument("not a PEM public key", field=field) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidArgument("not an Ed25519 public key", field=field)
    return key


def verify_any(keys: Iterable[Ed25519PublicKey], signature: bytes, data: bytes) -> bool:
    """True when one of the trusted keys made `signature` over `data`."""
    for key in keys:
        try:
            key.verify(signature, data)
        except (InvalidSignature, ValueError):  # any bytes as a signature: wrong length included
            continue
        return True
    return False


KEY_LIMIT = 64 << 10  # bytes of one public key file


@dataclass(frozen=True)
class TrustedKeys:
    """The usable keys of the trusted-keys directory, and one sentence per file that is not."""

    keys: list[Ed25519PublicKey] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _read_key(path: Path) -> bytes:
    """The bytes of one key file, read without ever blocking: it must be a regular file (a
    symlink to one is fine) of at most KEY_LIMIT bytes. stat() first, so a FIFO or a device is
    never opened; then open(O_NONBLOCK) (a FIFO swapped in meanwhile opens at once instead of
    waiting for a writer) and fstat() the descriptor, which is what is read. OSError (with
    strerror) for a file that is not a key file."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(0, "not a regular file")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        data = os.read(fd, KEY_LIMIT + 1)
        while len(data) <= KEY_LIMIT and (more := os.read(fd, KEY_LIMIT + 1 - len(data))):
            data += more
    finally:
        os.close(fd)
    if len(data) > KEY_LIMIT:
        raise OSError(0, f"larger than {KEY_LIMIT} bytes")
    return data


def load_trusted(directory: Path) -> TrustedKeys:
    """Every *.pub in the trusted-keys directory. Never raises and never blocks: a file that
    cannot be used (a directory, a FIFO or device, or a link to one, unreadable, a dangling
    link, too big, not an Ed25519 PEM public key) is named in `problems` and the others still
    count. No directory: no keys, so nothing verifies. Blocking file I/O: callers off the event
    loop run it in a thread (InstallService.verify does)."""
    trusted = TrustedKeys()
    try:
        paths = sorted(directory.glob("*.pub")) if directory.is_dir() else []
    except OSError as exc:
        trusted.problems.append(f"{directory}: {exc.strerror or exc}")
        return trusted
    for path in paths:
        try:
            pem = _read_key(path)
        except OSError as exc:
            trusted.problems.append(f"{path}: {exc.strerror or exc}")
            continue
        try:
            trusted.keys.append(load_public(pem, field=str(path)))
        except InvalidArgument as exc:
            trusted.problems.append(f"{path}: {exc}")
    return trusted
