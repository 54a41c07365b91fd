"""The vendor's side of XCC packages: a signing key, and building a signed package.

    satctl package keygen --out keys/          -> keys/vendor.key (0600), keys/vendor.pub
    satctl package build DIR --key keys/vendor.key -o xcc-2.4.1.tar.gz

DIR holds `package.json` ({"name", "version", "command", "health"}) and `payload/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from satbridge.core.package import FORMAT, Manifest, parse_manifest
from satbridge.errors import InvalidArgument
from satbridge.system import package as package_io
from satbridge.system.files import atomic_write, read_regular
from satbridge.tls.signing import new_signing_key, sign


def keygen(out_dir: Path) -> tuple[Path, Path]:
    private, public = new_signing_key()
    out_dir.mkdir(parents=True, exist_ok=True)
    key, pub = out_dir / "vendor.key", out_dir / "vendor.pub"
    if key.exists():
        raise InvalidArgument(f"{key} exists; keep it, or remove it first", field="--output")
    atomic_write(key, private, mode=0o600)
    atomic_write(pub, public)
    return key, pub


MAX_SPEC = 1 << 20
"""Bytes a package.json may hold (the manifest's own limit)."""


def manifest_for(source: Path) -> Manifest:
    """The manifest of DIR: its package.json, and every member of DIR/payload listed (files
    with sha256 and mode, directories with mode, links with target). The bridge's own checks
    (core.package.parse_manifest) then run on it, so what the bridge would refuse is refused
    here, before anything is signed. Raises InvalidArgument naming the file or the field."""
    try:
        # the one checked reader: a FIFO or a device named package.json is refused, never waited on
        spec = json.loads(read_regular(source / "package.json", limit=MAX_SPEC, field="DIR"))
    except FileNotFoundError:
        raise InvalidArgument(f"{source}/package.json is missing", field="DIR") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise InvalidArgument(f"{source}/package.json is not a readable JSON file: {exc}", field="DIR") from None
    if not isinstance(spec, dict):
        raise InvalidArgument(f"{source}/package.json must hold a JSON object", field="DIR")
    payload = source / "payload"
    if not payload.is_dir() or payload.is_symlink():
        raise InvalidArgument(f"{payload} is missing (or not a directory)", field="DIR")
    files: dict[str, dict[str, str]] = {}
    dirs: dict[str, str] = {}
    links: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(payload):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            inner = path.relative_to(payload).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                links[inner] = os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                dirs[inner] = "0755"  # reproducible: modes are normalised like owners and times
            elif stat.S_ISREG(st.st_mode):
                if st.st_nlink > 1:
                    raise InvalidArgument(f"{path} is a hard link; packages hold none", field="DIR")
                files[inner] = {
                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                    "mode": "0755" if st.st_mode & 0o111 else "0644",
                }
            else:
                raise InvalidArgument(f"{path} is not a file, directory or link", field="DIR")
    draft = {
        "format": FORMAT,
        "name": spec.get("name"),
        "version": spec.get("version"),
        "command": spec.get("command"),
        "health": spec.get("health"),
        "files": files,
        "dirs": dirs,
        "links": links,
    }
    # The bridge's own checks, before anything is signed; what it refuses names the field.
    return parse_manifest(json.dumps(draft).encode())


def build(source: Path, key_pem: bytes, out: Path, *, compression: str = "gzip") -> Manifest:
    manifest = manifest_for(source)
    raw = manifest.to_bytes()
    package_io.write(out, raw, sign(key_pem, raw), source / "payload", compression)
    return manifest
