"""XCC packages: names, versions, the signed manifest, and which tar members a package may hold.

Pure: no I/O. The bridge (install), satctl (describe, update) and `satctl package build` all use
these checks, so a vendor meets a refusal before shipping and the bridge refuses the same things.

A package is a tar (optionally gzip or zstd) whose first two members are `manifest.json` and
`manifest.sig` (Ed25519 over the manifest bytes), followed by `payload/...`. The manifest
(format 2) lists every payload member: files with their sha256 and mode, directories with their
mode, and symbolic links with their target. Anything in the tar that it does not list is refused.
Format 1 manifests (packages signed before format 2) list only files: their directories are
implied by the file paths and they may hold no links (DESIGN §10, README "Updates").
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from satbridge.errors import InvalidArgument

FORMAT = 2
LEGACY_FORMAT = 1
PAYLOAD = "payload"
MANIFEST_LIMIT = 1 << 20  # bytes of manifest.json
SIGNATURE_LIMIT = 1024
MAX_ENTRIES = 100_000  # files + directories + links
MAX_DEPTH = 32  # path components below payload/
MAX_PATH = 1024  # bytes of a payload path
MAX_COMPONENT = 255  # NAME_MAX
FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755

# One grammar for names and versions, ASCII only (no \d: it matches Arabic and fullwidth digits).
# A name: lower-case words joined by single hyphens, at most 32 characters.
_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
NAME_MAX = 32
# A version: SemVer 2.0.0 without build metadata, so one version has one spelling (and one
# release directory): MAJOR.MINOR.PATCH without leading zeros, then an optional pre-release of
# dot-separated identifiers, numeric ones without leading zeros (semver.org, items 2 and 9).
_NUMBER = r"(?:0|[1-9][0-9]{0,8})"
_IDENT = rf"(?:{_NUMBER}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_VERSION = re.compile(rf"({_NUMBER}\.{_NUMBER}\.{_NUMBER})(?:-({_IDENT}(?:\.{_IDENT})*))?")
VERSION_MAX = 64
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MODE = re.compile(r"0[0-7]{3}")
# A path component: printable ASCII, no slash or backslash, no leading or trailing space.
_COMPONENT = re.compile(r"[!-.0-\[\]-~](?:[ -.0-\[\]-~]*[!-.0-\[\]-~])?")
_UPLOAD_ID = re.compile(r"[0-9a-f]{64}")


def check_version(text: object, *, field: str = "version") -> str:
    """`text` if it is a version of our grammar (2.4.1, 2.5.0-rc.1); InvalidArgument otherwise."""
    if not isinstance(text, str) or len(text) > VERSION_MAX or not _VERSION.fullmatch(text):
        raise InvalidArgument(
            f"{text!r} is not a version like 2.4.1 or 2.5.0-rc.1 (SemVer: three numbers, no leading zeros)",
            field=field,
        )
    return text


def version_key(text: str) -> tuple[tuple[int, ...], int, tuple[tuple[int, int | str], ...]]:
    """Order versions as SemVer does: numbers first; a pre-release (2.5.0-rc.1) sorts before its
    release; pre-release identifiers compare numerically when numeric. Two versions have equal
    keys only when they are spelled alike. Raises InvalidArgument."""
    match = _VERSION.fullmatch(check_version(text))
    assert match is not None  # check_version made sure
    numbers = tuple(int(p) for p in match.group(1).split("."))
    pre = match.group(2)
    idents = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) if pre else ()
    return numbers, 0 if pre else 1, idents


def is_version(text: str) -> bool:
    return isinstance(text, str) and len(text) <= VERSION_MAX and _VERSION.fullmatch(text) is not None


def check_name(text: object, *, field: str = "name") -> str:
    """`text` if it is a package name (xcc, xcc-lite); InvalidArgument otherwise."""
    if not isinstance(text, str) or len(text) > NAME_MAX or not _NAME.fullmatch(text):
        raise InvalidArgument(
            f"{text!r} is not a package name (lower-case ASCII letters and digits, single hyphens between)",
            field=field,
        )
    return text


def check_upload_id(text: str) -> str:
    """An id as BeginUpload hands them out: the package's sha256 (it names files)."""
    if not _UPLOAD_ID.fullmatch(text):
        raise InvalidArgument("the id BeginUpload returned", field="upload_id")
    return text


def check_sha256(text: object, *, field: str = "sha256") -> str:
    if not isinstance(text, str) or not _SHA256.fullmatch(text):
        raise InvalidArgument("expected 64 lower-case hex digits", field=field)
    return text


def check_path(path: object, *, field: str) -> str:
    """A payload path as the manifest must spell it: relative, canonical (no ., .., empty or
    trailing components), printable ASCII, at most MAX_DEPTH components and MAX_PATH bytes."""
    if not isinstance(path, str):
        raise InvalidArgument("a payload path (a string)", field=field)
    parts = path.split("/")
    if (
        not parts
        or len(path) > MAX_PATH
        or len(parts) > MAX_DEPTH
        or any(p in (".", "..") or len(p) > MAX_COMPONENT or not _COMPONENT.fullmatch(p) for p in parts)
    ):
        raise InvalidArgument(
            f"{path!r} is not a payload path (relative, printable ASCII, no ., .. or empty parts)", field=field
        )
    return path


MAX_ARGS = 256
MAX_ARG = 4095  # UTF-8 bytes of one command argument: systemd's PATH_MAX for a word, less the NUL
MAX_COMMAND = 32 << 10  # UTF-8 bytes of all arguments: one ExecStart= line, quoted, stays short


def check_command(command: object) -> list[str]:
    """The manifest's `command`: a non-empty list of at most MAX_ARGS non-empty strings of at
    most MAX_ARG UTF-8 bytes (MAX_COMMAND in all), without control characters (C0, DEL, C1: a newline would end the
    ExecStart= line of xcc.service) or lone surrogates (not UTF-8). Any other character is
    quoted for systemd by core.units.render_xcc_unit. InvalidArgument names the argument."""
    if not isinstance(command, list) or not command or len(command) > MAX_ARGS:
        raise InvalidArgument(f"a non-empty list of at most {MAX_ARGS} strings", field="manifest.command")
    for index, arg in enumerate(command):
        where = f"manifest.command[{index}]"
        if not isinstance(arg, str) or not arg:
            raise InvalidArgument("a non-empty string", field=where)
        bad = next((c for c in arg if unicodedata.category(c) in ("Cc", "Cs")), None)
        if bad is not None:
            raise InvalidArgument(f"the control character {bad!r} is not allowed in a command argument", field=where)
        if len(arg.encode()) > MAX_ARG:
            raise InvalidArgument(f"longer than {MAX_ARG} bytes (UTF-8)", field=where)
    if sum(len(arg.encode()) for arg in command) > MAX_COMMAND:
        raise InvalidArgument(f"longer than {MAX_COMMAND} bytes (UTF-8) in all", field="manifest.command")
    return command


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def parents(path: str) -> list[str]:
    """Every directory above `path` inside the payload, outermost first ("a/b/c" -> a, a/b)."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _mode_text(mode: int) -> str:
    return f"0{mode:03o}"


@dataclass(frozen=True)
class Health:
    kind: str  # "tcp" or "http"
    port: int
    path: str = "/"


@dataclass(frozen=True)
class Manifest:
    """A package's signed description. Paths are payload-relative (check_path).

    files: path -> sha256; modes: file path -> permission bits (format 1: absent, taken from
    the tar as 0755 or 0644); dirs: path -> permission bits; links: path -> target."""

    name: str
    version: str
    command: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)
    health: Health | None = None
    modes: dict[str, int] = field(default_factory=dict)
    dirs: dict[str, int] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT

    def to_bytes(self) -> bytes:
        """The format-2 manifest; directories above files and links that are not listed are
        added (0755) and files without a mode get 0644, so any draft becomes a full listing."""
        dirs = dict(self.dirs)
        for path in [*self.files, *self.links, *self.dirs]:
            for parent in parents(path):
                dirs.setdefault(parent, DIR_MODE)
        data: dict[str, Any] = {
            "format": FORMAT,
            "name": self.name,
            "version": self.version,
            "command": list(self.command),
            "files": {
                p: {"sha256": d, "mode": _mode_text(self.modes.get(p, FILE_MODE))}
                for p, d in sorted(self.files.items())
            },
            "dirs": {p: _mode_text(m) for p, m in sorted(dirs.items())},
            "links": dict(sorted(self.links.items())),
        }
        if self.health:
            data["health"] = {"kind": self.health.kind, "port": self.health.port, "path": self.health.path}
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()

    def all_dirs(self) -> dict[str, int]:
        """Every directory to create, with its mode (format 1: implied by the file paths)."""
        if self.format == FORMAT:
            return dict(self.dirs)
        return {parent: DIR_MODE for path in self.files for parent in parents(path)}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise InvalidArgument(f"the key {key!r} appears twice", field="manifest")
        data[key] = value
    return data


def _mode(value: object, *, field: str, directory: bool) -> int:
    if not isinstance(value, str) or not _MODE.fullmatch(value):
        raise InvalidArgument('a mode like "0755" (octal permission bits, no setuid/setgid/sticky)', field=field)
    mode = int(value, 8)
    if mode & 0o022:
        # XCC runs as root from these files: nobody but root may change them.
        raise InvalidArgument(f"{value} is group- or world-writable; at most 0755", field=field)
    if directory and mode & 0o700 != 0o700:
        raise InvalidArgument("a directory's owner needs rwx (0700 at least)", field=field)
    if not directory and not mode & 0o400:
        raise InvalidArgument("a file's owner needs read (0400 at least)", field=field)
    return mode


def _link_target(link: str, target: object, files: dict[str, str], *, field: str) -> str:
    """The payload file `target` names from `link`: it must be written as `../`* then a
    canonical path, stay inside the payload, and name a listed regular file (never a link or a
    directory), so its lexical and its kernel resolution agree."""
    if not isinstance(target, str) or not target or target.startswith("/"):
        raise InvalidArgument("a relative link target", field=field)
    parts = target.split("/")
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    base = link.split("/")[:-1]
    rest = parts[ups:]
    if ups > len(base) or not rest:
        raise InvalidArgument(f"{link} -> {target} points out of the payload", field=field)
    resolved = "/".join([*base[: len(base) - ups], *rest])
    check_path("/".join(rest), field=field)
    if resolved not in files:
        raise InvalidArgument(f"{link} -> {target} must point at a file listed in the payload", field=field)
    return target


def _dict(data: dict[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
    value = data.get(key, None if required else {})
    if not isinstance(value, dict) or (required and not value):
        raise InvalidArgument("a non-empty map" if required else "a map", field=f"manifest.{key}")
    return value


def parse_manifest(raw: bytes) -> Manifest:
    """The manifest in `raw` (format 1 or 2), checked whole; InvalidArgument naming the field
    for anything else: not UTF-8 JSON, too big or deep, wrong types, unknown keys, bad names,
    paths or links, a member listed twice or under a non-directory."""
    if len(raw) > MANIFEST_LIMIT:
        raise InvalidArgument(f"manifest.json is larger than {MANIFEST_LIMIT} bytes", field="manifest")
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidArgument("manifest.json is not UTF-8 JSON (or nests too deep)", field="manifest") from None
    if not isinstance(data, dict):
        raise InvalidArgument("a JSON object", field="manifest")
    fmt = data.get("format")
    if type(fmt) is not int or fmt not in (LEGACY_FORMAT, FORMAT):
        raise InvalidArgument(
            f"unknown manifest format (expected {LEGACY_FORMAT} or {FORMAT})", field="manifest.format"
        )
    known = {"format", "name", "version", "command", "files", "health"} | (
        {"dirs", "links"} if fmt == FORMAT else set()
    )
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidArgument(f"unknown keys {unknown}", field="manifest")
    name = check_name(data.get("name"), field="manifest.name")
    version = check_version(data.get("version"), field="manifest.version")
    command = check_command(data.get("command"))
    files_in = _dict(data, "files")
    dirs_in = _dict(data, "dirs", required=False) if fmt == FORMAT else {}
    links_in = _dict(data, "links", required=False) if fmt == FORMAT else {}
    if len(files_in) + len(dirs_in) + len(links_in) > MAX_ENTRIES:
        raise InvalidArgument(f"more than {MAX_ENTRIES} members", field="manifest")
    files: dict[str, str] = {}
    modes: dict[str, int] = {}
    for path, entry in files_in.items():
        where = f"manifest.files[{path}]"
        check_path(path, field=where)
        if fmt == LEGACY_FORMAT:
            files[path] = check_sha256(entry, field=where)
            continue
        if not isinstance(entry, dict) or set(entry) != {"sha256", "mode"}:
            raise InvalidArgument('{"sha256": ..., "mode": "0644"}', field=where)
        files[path] = check_sha256(entry["sha256"], field=where)
        modes[path] = _mode(entry["mode"], field=where, directory=False)
    dirs = {
        check_path(p, field=f"manifest.dirs[{p}]"): _mode(m, field=f"manifest.dirs[{p}]", directory=True)
        for p, m in dirs_in.items()
    }
    links: dict[str, str] = {}
    for path, target in links_in.items():
        where = f"manifest.links[{path}]"
        links[check_path(path, field=where)] = _link_target(path, target, files, field=where)
    kinds = [(p, "file") for p in files] + [(p, "dir") for p in dirs] + [(p, "link") for p in links]
    seen: dict[str, str] = {}
    for path, kind in kinds:
        if path in seen:
            raise InvalidArgument(f"{path} is listed as a {seen[path]} and as a {kind}", field="manifest")
        seen[path] = kind
    if fmt == FORMAT:
        for path in seen:
            parent = _parent(path)
            if parent and seen.get(parent) != "dir":
                raise InvalidArgument(
                    f"{path} lies under {parent}, which is not a listed directory", field="manifest.dirs"
                )
    else:
        for path in files:
            for parent in parents(path):
                if parent in files:
                    raise InvalidArgument(f"{path} lies under the file {parent}", field="manifest.files")
    check_path(command[0], field="manifest.command[0]")
    if command[0] not in files:
        raise InvalidArgument(f"{command[0]} is not in the payload (as a file)", field="manifest.command[0]")
    health = None
    if data.get("health") is not None:
        h = data["health"]
        if not isinstance(h, dict) or h.get("kind") not in ("tcp", "http") or not set(h) <= {"kind", "port", "path"}:
            raise InvalidArgument("{kind: tcp or http, port, path}", field="manifest.health")
        port = h.get("port")
        if type(port) is not int or not 1 <= port <= 65535:
            raise InvalidArgument("a port 1..65535", field="manifest.health.port")
        path = h.get("path", "/")
        if not isinstance(path, str) or not re.fullmatch(r"/[!-~]{0,255}", path):
            raise InvalidArgument("an HTTP path of printable ASCII starting with /", field="manifest.health.path")
        health = Health(h["kind"], port, path)
    return Manifest(name, version, tuple(command), files, health, modes, dirs, links, fmt)


@dataclass(frozen=True)
class Limits:
    max_file: int = 1 << 30
    max_total: int = 2 << 30
    max_members: int = MAX_ENTRIES


@dataclass(frozen=True)
class Member:
    """What the extractor is to create for one tar member: `path` inside the payload ("" for
    payload/ itself), its kind (file, dir, link), and for a link its target."""

    path: str
    kind: str
    target: str = ""


def check_member(manifest: Manifest, name: str, kind: str, linkname: str) -> Member:
    """Decide about one tar member before anything is written: it must be `payload` or
    `payload/<path>` with <path> spelled exactly as the manifest lists it, of the kind listed
    (and a link with the listed target). Raises InvalidArgument for anything else: absolute or
    climbing paths, unlisted members, hard links, devices, fifos. `kind` is file, dir, symlink,
    hardlink or other."""
    if name.startswith("/") or "\\" in name:
        raise InvalidArgument(f"absolute path in the package: {name}", field="package")
    if ".." in name.split("/"):
        raise InvalidArgument(f"a path that climbs out (..): {name}", field="package")
    if kind == "hardlink":
        raise InvalidArgument(f"hard links are not allowed in packages: {name}", field="package")
    if kind not in ("file", "dir", "symlink"):
        raise InvalidArgument(f"device or special file in the package: {name}", field="package")
    if name in (PAYLOAD, PAYLOAD + "/"):
        if kind != "dir":
            raise InvalidArgument("payload must be a directory", field="package")
        return Member("", "dir")
    if not name.startswith(PAYLOAD + "/"):
        raise InvalidArgument(f"unexpected member outside payload/: {name}", field="package")
    inner = name[len(PAYLOAD) + 1 :]
    if kind == "dir":
        inner = inner.removesuffix("/")
        if inner not in manifest.all_dirs():
            raise InvalidArgument(f"the directory {inner} is not in the manifest", field="package")
        return Member(inner, "dir")
    if kind == "symlink":
        if manifest.links.get(inner) != linkname:
            raise InvalidArgument(f"the link {inner} -> {linkname} is not in the manifest", field="package")
        return Member(inner, "link", linkname)
    if inner not in manifest.files:
        raise InvalidArgument(f"{inner} is in the payload but not in the manifest", field="package")
    return Member(inner, "file")
