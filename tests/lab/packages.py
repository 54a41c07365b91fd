"""Demo XCC packages for the tests: good ones, failing ones, and deliberately bad archives."""

from __future__ import annotations

import gzip
import importlib.util
import io
import tarfile
from pathlib import Path

from satbridge.core.package import Manifest
from satbridge.tls.signing import new_signing_key, sign

_spec = importlib.util.spec_from_file_location(
    "demo_make", Path(__file__).resolve().parents[2] / "build/demo_xcc/make.py"
)
assert _spec
assert _spec.loader
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)


def trusted_key(config_dir: Path, out: Path) -> Path:
    """A vendor key whose public half the satellite trusts; returns the private key file."""
    key = out / "vendor.key"
    if not key.exists():
        demo.keygen(out)
    keys = config_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / "vendor.pub").write_bytes((out / "vendor.pub").read_bytes())
    return key


def good(out: Path, key: Path, version: str, **kw: object) -> Path:
    """A demo package; its health probe is a TCP connect unless told otherwise (the fast tests
    answer it with a bare listener, as the fake systemd runs nothing)."""
    kw.setdefault("probe", "tcp")
    return demo.make(out, version=version, key=key, **kw)


def raw_package(
    out: Path,
    key_pem: bytes,
    manifest: Manifest,
    members: list[tuple[tarfile.TarInfo, bytes]],
    *,
    signature: bytes | None = None,
    name: str = "bad.tar.gz",
) -> Path:
    """A package with arbitrary members after the (validly signed) manifest."""
    raw = manifest.to_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member_name, data in (("manifest.json", raw), ("manifest.sig", signature or sign(key_pem, raw))):
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    path = out / name
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return path


def member(
    name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = link
    info.mode = 0o755
    return info, data


def other_key() -> bytes:
    return new_signing_key()[0]


def manifest_of(path: Path) -> Manifest:
    from satbridge.core.package import parse_manifest
    from satbridge.system.package import read_head

    return parse_manifest(read_head(path)[0])
