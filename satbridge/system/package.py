"""Reading, extracting and writing XCC package files (tar, tar.gz, tar.zst) on disk.

The extraction streams the archive once, lets core.package decide about every member before
anything is written, writes each file under a fresh directory with its sha256 checked against
the manifest, and refuses the whole package at the first doubt.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from satbridge.core.package import Limits, Manifest, check_member
from satbridge.errors import InvalidArgument, ResourceExhausted
from satbridge.system.files import fsync_dir

HEAD_LIMIT = 1 << 20
_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
}


def _bad(why: str) -> InvalidArgument:
    return InvalidArgument(why, field="package")


@contextmanager
def open_stream(path: Path) -> Iterator[tarfile.TarFile]:
    """The package as a streaming tar, whatever its compression."""
    with open(path, "rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        source: IO[bytes] = raw
        if magic[:4] == b"\x28\xb5\x2f\xfd":
            import zstandard

            source = zstandard.ZstdDecompressor().stream_reader(raw)
        try:
            with tarfile.open(fileobj=source, mode="r|*") as tar:
                yield tar
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno == 28:
                raise ResourceExhausted("no space left to extract the package") from exc
            raise _bad(f"the package is damaged or truncated: {exc}") from None
        except Exception as exc:  # zstandard.ZstdError and friends
            if type(exc).__module__.startswith("zstandard"):
                raise _bad(f"the package is damaged or truncated: {exc}") from None
            raise


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if not member.isreg() or member.size > limit:
        raise _bad(f"{member.name} must be a regular file of at most {limit} bytes")
    handle = tar.extractfile(member)
    assert handle is not None
    return handle.read()


def read_head(path: Path) -> tuple[bytes, bytes]:
    """manifest.json and manifest.sig, which must come first (so nothing else is read before
    the signature is checked)."""
    with open_stream(path) as tar:
        first = tar.next()
        if first is None or first.name != "manifest.json":
            raise _bad("manifest.json must be the first member")
        manifest = _read_member(tar, first, HEAD_LIMIT)
        second = tar.next()
        if second is None or second.name != "manifest.sig":
            raise _bad("manifest.sig must be the second member")
        return manifest, _read_member(tar, second, 1024)


def extract(path: Path, dest: Path, manifest: Manifest, limits: Limits) -> None:
    """Extract payload/ into `dest` (which must not exist), verified against the manifest."""
    dest.mkdir(parents=True)
    seen: set[str] = set()
    total = 0
    count = 0
    with open_stream(path) as tar:
        for member in tar:
            if member.name in ("manifest.json", "manifest.sig"):
                continue
            count += 1
            if count > limits.max_members:
                raise _bad(f"more than {limits.max_members} members")
            kind = _KINDS.get(member.type, "other")
            inner = check_member(member.name, kind, member.size, member.linkname)
            if inner is None:
                continue
            target = dest / inner
            if kind == "dir":
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.parent.resolve().is_relative_to(dest.resolve()):
                raise _bad(f"{member.name} would be written outside the payload (through a link)")
            if kind == "symlink":
                os.symlink(member.linkname, target)
                continue
            if member.size > limits.max_file:
                raise _bad(f"{member.name} is larger than {limits.max_file} bytes")
            total += member.size
            if total > limits.max_total:
                raise _bad(f"the payload is larger than {limits.max_total} bytes (a decompression bomb?)")
            expected = manifest.files.get(inner)
            if expected is None:
                raise _bad(f"{inner} is in the payload but not in the manifest")
            handle = tar.extractfile(member)
            assert handle is not None
            digest = hashlib.sha256()
            fd = os.open(
                target,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o755 if member.mode & 0o111 else 0o644,
            )
            try:
                while data := handle.read(1 << 20):
                    digest.update(data)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError as exc:
                if exc.errno == 28:
                    raise ResourceExhausted("no space left to extract the package") from exc
                raise
            finally:
                os.close(fd)
            if digest.hexdigest() != expected:
                raise _bad(f"{inner} does not match its sha256 in the manifest")
            seen.add(inner)
    missing = sorted(set(manifest.files) - seen)
    if missing:
        raise _bad(f"files in the manifest but not in the payload: {', '.join(missing[:5])}")
    for directory, _, _ in os.walk(dest):
        fsync_dir(Path(directory))


def write(out: Path, manifest: bytes, signature: bytes, payload: Path, compression: str = "gzip") -> None:
    """Build a package file (the vendor's side)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("manifest.json", manifest), ("manifest.sig", signature)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        tar.add(payload, arcname="payload", filter=lambda t: _normalise(t))
    raw = buffer.getvalue()
    if compression == "gzip":
        import gzip

        raw = gzip.compress(raw, mtime=0)
    elif compression == "zstd":
        import zstandard

        raw = zstandard.ZstdCompressor(level=10).compress(raw)
    out.write_bytes(raw)


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Reproducible packages: no owner names, ids or times from the build machine.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


class PackageIO:
    """The PackageFiles port over this module's functions."""

    def read_head(self, path: Path) -> tuple[bytes, bytes]:
        return read_head(path)

    def extract(self, path: Path, dest: Path, manifest: Manifest, limits: Limits) -> None:
        extract(path, dest, manifest, limits)
