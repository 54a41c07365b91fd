"""XCC packages: the manifest, versions, and which tar members a package may hold (pure).

A package is a tar (optionally gzip or zstd) whose first two members are `manifest.json` and
`manifest.sig` (Ed25519 over the manifest bytes), followed by `payload/...`.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from satbridge.errors import InvalidArgument

FORMAT = 1
PAYLOAD = "payload/"
_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
_VERSION = re.compile(r"(\d{1,9})(?:\.(\d{1,9})){0,3}(?:[-~][0-9A-Za-z.]{1,32})?")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_version(text: str, *, field: str = "version") -> str:
    if not _VERSION.fullmatch(text):
        raise InvalidArgument(f"{text!r} is not a version like 2.4.1 or 2.5.0-rc1", field=field)
    return text


def version_key(text: str) -> tuple[tuple[int, ...], int, str]:
    """Order versions: numbers first; a pre-release (2.5.0-rc1) sorts before its release."""
    match = re.fullmatch(r"([\d.]+)(?:[-~](.*))?", check_version(text))
    assert match is not None  # check_version made sure
    numbers = tuple(int(p) for p in match.group(1).split("."))
    return numbers + (0,) * (4 - len(numbers)), 0 if match.group(2) else 1, match.group(2) or ""


def check_name(text: str, *, field: str = "name") -> str:
    if not _NAME.fullmatch(text):
        raise InvalidArgument(f"{text!r} is not a package name (lower case letters, digits, -)", field=field)
    return text


_UPLOAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")


def check_upload_id(text: str) -> str:
    """An id as BeginUpload hands them out (it names files: nothing else gets through)."""
    if not _UPLOAD_ID.fullmatch(text):
        raise InvalidArgument("the id BeginUpload returned", field="upload_id")
    return text


def check_sha256(text: str, *, field: str = "sha256") -> str:
    if not _SHA256.fullmatch(text):
        raise InvalidArgument("expected 64 lower-case hex digits", field=field)
    return text


@dataclass(frozen=True)
class Health:
    kind: str  # "tcp" or "http"
    port: int
    path: str = "/"


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    command: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)  # payload-relative path -> sha256
    health: Health | None = None

    def to_bytes(self) -> bytes:
        data: dict[str, Any] = {
            "format": FORMAT,
            "name": self.name,
            "version": self.version,
            "command": list(self.command),
            "files": dict(sorted(self.files.items())),
        }
        if self.health:
            data["health"] = {"kind": self.health.kind, "port": self.health.port, "path": self.health.path}
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def _relative(path: str, *, field: str) -> str:
    norm = posixpath.normpath(path)
    if not path or path.startswith("/") or norm.startswith("..") or norm != path.rstrip("/") or "\\" in path:
        raise InvalidArgument(f"{path!r} must be a plain relative path inside the payload", field=field)
    return norm


def parse_manifest(raw: bytes) -> Manifest:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("manifest.json is not JSON", field="manifest") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidArgument(f"unknown manifest format (expected {FORMAT})", field="manifest.format")
    name = check_name(str(data.get("name", "")), field="manifest.name")
    version = check_version(str(data.get("version", "")), field="manifest.version")
    command = data.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(c, str) and c for c in command):
        raise InvalidArgument("a non-empty list of strings", field="manifest.command")
    _relative(command[0], field="manifest.command[0]")
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        raise InvalidArgument("a map of payload paths to sha256", field="manifest.files")
    checked = {}
    for path, digest in files.items():
        checked[_relative(str(path), field=f"manifest.files[{path}]")] = check_sha256(
            str(digest), field=f"manifest.files[{path}]"
        )
    if _relative(command[0], field="manifest.command[0]") not in checked:
        raise InvalidArgument(f"{command[0]} is not in the payload", field="manifest.command[0]")
    health = None
    if data.get("health") is not None:
        h = data["health"]
        if not isinstance(h, dict) or h.get("kind") not in ("tcp", "http"):
            raise InvalidArgument("kind must be tcp or http", field="manifest.health")
        port = h.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidArgument("a port 1..65535", field="manifest.health.port")
        health = Health(h["kind"], port, str(h.get("path", "/")))
    return Manifest(name, version, tuple(command), checked, health)


@dataclass(frozen=True)
class Limits:
    max_file: int = 1 << 30
    max_total: int = 2 << 30
    max_members: int = 100_000


def check_member(name: str, kind: str, size: int, linkname: str) -> str | None:
    """Where a tar member goes inside the payload (None for the directory itself); raises
    InvalidArgument for anything that could escape or is not a plain file, directory or inner
    symlink. `kind` is file, dir, symlink, hardlink or other (devices, fifos)."""
    if name.startswith("/") or "\\" in name:
        raise InvalidArgument(f"absolute path in the package: {name}", field="package")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../") or "/../" in f"/{name}/":
        raise InvalidArgument(f"a path that climbs out (..): {name}", field="package")
    if norm == "payload":
        return None
    if not norm.startswith(PAYLOAD):
        raise InvalidArgument(f"unexpected member outside payload/: {name}", field="package")
    inner = norm[len(PAYLOAD) :]
    if kind == "hardlink":
        raise InvalidArgument(f"hard links are not allowed in packages: {name}", field="package")
    if kind == "symlink":
        target = posixpath.normpath(posixpath.join(posixpath.dirname(inner), linkname))
        if linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise InvalidArgument(f"a link that points out of the payload: {name} -> {linkname}", field="package")
    elif kind not in ("file", "dir"):
        raise InvalidArgument(f"device or special file in the package: {name}", field="package")
    if size < 0:
        raise InvalidArgument(f"a negative size: {name}", field="package")
    return inner
