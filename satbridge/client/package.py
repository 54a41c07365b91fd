"""The vendor's side of XCC packages: a signing key, and building a signed package.

    satctl package keygen --out keys/          -> keys/vendor.key (0600), keys/vendor.pub
    satctl package build DIR --key keys/vendor.key -o xcc-2.4.1.tar.gz

DIR holds `package.json` ({"name", "version", "command", "health"}) and `payload/`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from satbridge.core.package import Health, Manifest, parse_manifest
from satbridge.errors import InvalidArgument
from satbridge.system import package as package_io
from satbridge.system.files import atomic_write
from satbridge.tls.signing import new_signing_key, sign


def keygen(out_dir: Path) -> tuple[Path, Path]:
    private, public = new_signing_key()
    out_dir.mkdir(parents=True, exist_ok=True)
    key, pub = out_dir / "vendor.key", out_dir / "vendor.pub"
    if key.exists():
        raise InvalidArgument(f"{key} exists; keep it, or remove it first", field="--out")
    atomic_write(key, private, mode=0o600)
    atomic_write(pub, public)
    return key, pub


def manifest_for(source: Path) -> Manifest:
    try:
        spec = json.loads((source / "package.json").read_text())
    except FileNotFoundError:
        raise InvalidArgument(f"{source}/package.json is missing", field="DIR") from None
    except ValueError as exc:
        raise InvalidArgument(f"{source}/package.json is not JSON: {exc}", field="DIR") from None
    payload = source / "payload"
    if not payload.is_dir():
        raise InvalidArgument(f"{payload} is missing", field="DIR")
    files = {}
    for dirpath, _, names in os.walk(payload):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                files[str(path.relative_to(payload))] = hashlib.sha256(path.read_bytes()).hexdigest()
    health = spec.get("health")
    draft = Manifest(
        name=str(spec.get("name", "")),
        version=str(spec.get("version", "")),
        command=tuple(spec.get("command", [])),
        files=files,
        health=Health(health["kind"], int(health["port"]), health.get("path", "/")) if health else None,
    )
    return parse_manifest(draft.to_bytes())  # the bridge's own checks, before anything is signed


def build(source: Path, key_pem: bytes, out: Path, *, compression: str = "gzip") -> Manifest:
    manifest = manifest_for(source)
    raw = manifest.to_bytes()
    package_io.write(out, raw, sign(key_pem, raw), source / "payload", compression)
    return manifest
