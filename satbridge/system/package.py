"""Reading, extracting and writing XCC package files (tar, tar.gz, tar.zst) on disk.

The extraction streams the archive once, lets core.package decide about every member before
anything is written (it must be listed in the signed manifest, as it is), creates everything
relative to one open directory descriptor without following any link, checks each file's
sha256, and refuses the whole package at the first doubt. Python's tarfile extraction filters
are not used: they resolve paths on disk (realpath), which is what link chains defeat; the
manifest check is lexical and the creation follows no link.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import io
import lzma
import os
import re
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

from satbridge.core.package import (
    DIR_MODE,
    EXEC_MODE,
    FILE_MODE,
    MANIFEST_LIMIT,
    PAYLOAD,
    SIGNATURE_LIMIT,
    Limits,
    Manifest,
    check_member,
    parse_manifest,
)
from satbridge.errors import InvalidArgument, ResourceExhausted

_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
}


def _bad(why: str) -> InvalidArgument:
    return InvalidArgument(why, field="package")


HEADER_LIMIT = 64 << 10  # bytes of one PAX extended header or GNU long name/link
_EXTENDED = {
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
}
_PAX = {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE}
# Members tarfile gives no data blocks to (it does not skip any: data there would be read as the
# next header, so it is refused rather than followed).
_DATALESS = {tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE}
_PAX_RECORD = re.compile(rb"([0-9]{1,20}) ([^=\n]+)=")


class _HeaderGuard:
    """A tar stream, read on tarfile's behalf, that refuses what would make tarfile allocate
    more than HEADER_LIMIT bytes for one header before it hands out a member.

    tarfile reads a PAX extended header (typeflag x, g, X) or a GNU long name or link (L, K)
    whole into memory, in one read of its declared size, inside `tar.next()`: a 512 MiB header of
    zeros costs 512 MiB before any size limit or signature check. This parser follows the same
    512-byte block structure (POSIX.1-2008 pax "ustar Interchange Format" and "pax Extended
    Header"; header fields decoded by tarfile's own TarInfo.frombuf, so both read one layout)
    and raises InvalidArgument on the header block that declares too much, before tarfile sees
    its data. It also refuses what would change that structure under it: a PAX `size` or
    `GNU.sparse.*` record, sparse members, data behind a directory, link or device header.
    At the first block tarfile itself stops at (zeros, a bad checksum) it stops following."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self._state = "header"  # header | extended | skip | done
        self._need = tarfile.BLOCKSIZE
        self._block = bytearray()
        self._extended: tarfile.TarInfo | None = None
        self._padding = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size if size is not None and size > 0 else 1 << 16)
        if self._state != "done":
            self._feed(data)
        return data

    def _feed(self, data: bytes) -> None:
        view = memoryview(data)
        at = 0
        while at < len(view) and self._state != "done":
            take = min(self._need, len(view) - at)
            if self._state != "skip":
                self._block += view[at : at + take]
            at += take
            self._need -= take
            if self._need == 0:
                self._decide()

    def _next_header(self, skip: int = 0) -> None:
        self._block.clear()
        self._state, self._need = ("skip", skip) if skip else ("header", tarfile.BLOCKSIZE)

    def _decide(self) -> None:
        if self._state == "skip":
            self._next_header()
        elif self._state == "extended":
            assert self._extended is not None
            if self._extended.type in _PAX:
                _check_pax_records(bytes(self._block))
            self._next_header(self._padding)
        else:
            self._header(bytes(self._block))

    def _header(self, block: bytes) -> None:
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            self._state = "done"  # end of archive or a damaged header: tarfile stops here too
            return
        size = info.size
        if info.type in _EXTENDED:
            if size > HEADER_LIMIT:
                raise _bad(
                    f"a tar extended header (PAX or GNU long name) of {size} bytes; "
                    f"at most {HEADER_LIMIT} bytes are read for one header"
                )
            self._extended = info
            self._padding = -size % tarfile.BLOCKSIZE
            if size:
                self._block.clear()
                self._state, self._need = "extended", size
            else:
                self._next_header(self._padding)
        elif info.type == tarfile.GNUTYPE_SPARSE:
            raise _bad(f"sparse files are not allowed in packages: {info.name}")
        elif info.type in _DATALESS:
            if size:
                raise _bad(f"{info.name}: a directory, link or device member that carries {size} bytes of data")
            self._next_header()
        else:
            self._next_header(size + (-size % tarfile.BLOCKSIZE))


def _check_pax_records(raw: bytes) -> None:
    """Refuse PAX records that would move the member boundaries tarfile and _HeaderGuard follow
    (`size`, GNU sparse maps), and records malformed enough that the two might split them
    differently."""
    at = 0
    while at < len(raw) and raw[at] != 0:
        match = _PAX_RECORD.match(raw, at)
        length = int(match.group(1)) if match else 0
        if not match or length < match.end() - at or at + length > len(raw) or raw[at + length - 1] != 0x0A:
            raise _bad("a malformed PAX extended header")
        keyword = match.group(2)
        if keyword == b"size" or keyword.startswith(b"GNU.sparse"):
            raise _bad(f"a PAX {keyword.decode(errors='replace')!r} record (packages need none)")
        at += length


def _decompressed(raw: IO[bytes]) -> IO[bytes]:
    """The tar bytes of a package file, whatever its compression (gzip, zstd; bzip2 and xz as
    tarfile's own r|* accepted them), as a stream."""
    magic = raw.read(6)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return cast("IO[bytes]", gzip.GzipFile(fileobj=raw, mode="rb"))
    if magic[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        return cast("IO[bytes]", zstandard.ZstdDecompressor().stream_reader(raw))
    if magic[:3] == b"BZh":
        return cast("IO[bytes]", bz2.BZ2File(raw, mode="rb"))
    if magic == b"\xfd7zXZ\x00":
        return cast("IO[bytes]", lzma.LZMAFile(raw, mode="rb"))
    return raw


@contextmanager
def open_stream(path: Path) -> Iterator[tarfile.TarFile]:
    """The package as a streaming tar, whatever its compression, read through _HeaderGuard so no
    header costs more than HEADER_LIMIT bytes of memory. InvalidArgument for a damaged,
    truncated or refused archive; ResourceExhausted for a full disk."""
    with open(path, "rb") as raw:
        try:
            source = _decompressed(raw)
            with tarfile.open(fileobj=cast("IO[bytes]", _HeaderGuard(source)), mode="r|") as tar:
                yield tar
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
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
        manifest = _read_member(tar, first, MANIFEST_LIMIT)
        second = tar.next()
        if second is None or second.name != "manifest.sig":
            raise _bad("manifest.sig must be the second member")
        return manifest, _read_member(tar, second, SIGNATURE_LIMIT)


# What a name in the package can provoke (too long, twice, in the wrong place): the package's
# fault, refused as such; any other error (EIO, EROFS) is the satellite's and propagates.
_PACKAGE_FAULTS = {
    errno.ENAMETOOLONG,
    errno.EEXIST,
    errno.ELOOP,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EINVAL,
    errno.ENOENT,
}
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _no_space(exc: OSError) -> None:
    if exc.errno == errno.ENOSPC:
        raise ResourceExhausted("no space left to extract the package") from exc


class _Tree:
    """Creates a payload under one open directory descriptor. Every path is walked component by
    component with openat(O_DIRECTORY | O_NOFOLLOW), and every leaf is made with mkdirat,
    openat(O_CREAT | O_EXCL | O_NOFOLLOW) or symlinkat: the kernel never resolves a path string
    we pass, so no link on disk, whoever made it, and no path length can lead outside."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd

    @contextmanager
    def parent(self, path: str) -> Iterator[tuple[int, str]]:
        """(descriptor of the directory holding `path`, the last component)."""
        *dirs, leaf = parts = path.split("/")
        if any(part in ("", ".", "..") for part in parts):  # core refused them; never trust one layer
            raise _bad(f"{path!r} is not a plain path inside the payload")
        fd = os.dup(self.root_fd)
        try:
            for part in dirs:
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    # ELOOP/ENOTDIR: a link or a file where a directory must be; ENOENT: missing.
                    raise _bad(f"{path}: {part} is not a directory of this payload ({exc.strerror})") from None
                os.close(fd)
                fd = child
            yield fd, leaf
        finally:
            os.close(fd)

    def mkdir(self, path: str) -> None:
        with self.parent(path) as (fd, leaf):
            try:
                os.mkdir(leaf, 0o700, dir_fd=fd)
            except FileExistsError:
                raise _bad(f"{path} is in the package twice") from None

    def chmod_dir(self, path: str, mode: int) -> None:
        with self.parent(path) as (fd, leaf):
            child = os.open(leaf, _DIR_FLAGS, dir_fd=fd)
            try:
                os.fchmod(child, mode)
                os.fsync(child)
            finally:
                os.close(child)

    def symlink(self, path: str, target: str) -> None:
        with self.parent(path) as (fd, leaf):
            try:
                os.symlink(target, leaf, dir_fd=fd)
            except FileExistsError:
                raise _bad(f"{path} is in the package twice") from None

    def write(self, path: str, source: IO[bytes], mode: int) -> str:
        """Create the file `path` from `source`; its sha256."""
        digest = hashlib.sha256()
        with self.parent(path) as (dir_fd, leaf):
            try:
                fd = os.open(
                    leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd
                )
            except FileExistsError:
                raise _bad(f"{path} is in the package twice") from None
            try:
                while data := source.read(1 << 20):
                    digest.update(data)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                os.fchmod(fd, mode)  # exactly the manifest's bits, whatever the umask
                os.fsync(fd)
            except OSError as exc:
                _no_space(exc)
                raise
            finally:
                os.close(fd)
        return digest.hexdigest()


def extract(path: Path, dest: Path, manifest: Manifest, limits: Limits) -> None:
    """Create the payload the manifest lists in `dest` (which must not exist), from the
    package at `path`, or raise InvalidArgument (ResourceExhausted for a full disk) at the
    first member that is not listed as it is, a file whose sha256 differs, a listed file or
    link the package lacks, or sizes over `limits`. `dest` then holds exactly the manifest's
    directories (their modes), files (their modes; format 1: 0755 or 0644 from the tar) and
    links; on an error the caller removes it."""
    os.mkdir(dest, 0o700)
    root_fd = os.open(dest, _DIR_FLAGS)
    try:
        tree = _Tree(root_fd)
        dirs = manifest.all_dirs()
        # Directories first, from the signed list, parents before children: the tar's own
        # directory members are then only checked, and its order cannot matter.
        for directory in sorted(dirs, key=lambda d: d.count("/")):
            tree.mkdir(directory)
        _extract_members(path, tree, manifest, limits)
        for directory in sorted(dirs, key=lambda d: -d.count("/")):
            tree.chmod_dir(directory, dirs[directory])
        os.fchmod(root_fd, DIR_MODE)
        os.fsync(root_fd)
    except OSError as exc:
        _no_space(exc)
        if exc.errno in _PACKAGE_FAULTS:
            raise _bad(f"a member cannot be created: {exc.strerror}: {exc.filename!r}") from None
        raise
    finally:
        os.close(root_fd)


def _extract_members(path: Path, tree: _Tree, manifest: Manifest, limits: Limits) -> None:
    seen: set[str] = set()
    total = 0
    count = 0
    with open_stream(path) as tar:
        for index, member in enumerate(tar):
            if index < 2:
                continue  # manifest.json and manifest.sig, read and verified before
            count += 1
            if count > limits.max_members:
                raise _bad(f"more than {limits.max_members} members")
            kind = _KINDS.get(member.type, "other")
            planned = check_member(manifest, member.name, kind, member.linkname)
            # Each path once, directories too (payload/ itself is ""): a path has one kind.
            if planned.path in seen:
                raise _bad(f"{PAYLOAD}/{planned.path} is in the package twice".rstrip("/"))
            seen.add(planned.path)
            if planned.kind == "dir":
                continue  # created from the manifest already
            if planned.kind == "link":
                tree.symlink(planned.path, planned.target)
                continue
            if member.size > limits.max_file:
                raise _bad(f"{member.name} is larger than {limits.max_file} bytes")
            total += member.size
            if total > limits.max_total:
                raise _bad(f"the payload is larger than {limits.max_total} bytes (a decompression bomb?)")
            mode = manifest.modes.get(planned.path, EXEC_MODE if member.mode & 0o111 else FILE_MODE)
            handle = tar.extractfile(member)
            assert handle is not None
            if tree.write(planned.path, handle, mode) != manifest.files[planned.path]:
                raise _bad(f"{planned.path} does not match its sha256 in the manifest")
    missing = sorted((set(manifest.files) | set(manifest.links)) - seen)
    if missing:
        raise _bad(f"listed in the manifest but not in the package: {', '.join(missing[:5])}")


def write(out: Path, manifest: bytes, signature: bytes, payload: Path, compression: str = "gzip") -> None:
    """Build a package file (the vendor's side): the tar holds exactly what `manifest` lists,
    read from `payload` without following links, each file checked against its sha256."""
    listing = parse_manifest(manifest)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("manifest.json", manifest), ("manifest.sig", signature)):
            tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
        tar.addfile(_info(PAYLOAD, tarfile.DIRTYPE, DIR_MODE))
        for directory in sorted(listing.all_dirs()):
            tar.addfile(_info(f"{PAYLOAD}/{directory}", tarfile.DIRTYPE, listing.all_dirs()[directory]))
        for link, target in sorted(listing.links.items()):
            info = _info(f"{PAYLOAD}/{link}", tarfile.SYMTYPE, 0o777)
            info.linkname = target
            tar.addfile(info)
        for name, digest in sorted(listing.files.items()):
            fd = os.open(payload / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                data = f.read()
            if hashlib.sha256(data).hexdigest() != digest:
                raise InvalidArgument(f"{payload / name} changed while the package was built", field="DIR")
            mode = listing.modes.get(name, FILE_MODE)
            tar.addfile(_info(f"{PAYLOAD}/{name}", tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
    raw = buffer.getvalue()
    if compression == "gzip":
        raw = gzip.compress(raw, mtime=0)
    elif compression == "zstd":
        import zstandard

        raw = zstandard.ZstdCompressor(level=10).compress(raw)
    out.write_bytes(raw)


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    # Reproducible packages: no owner names, ids or times from the build machine.
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    return info


class PackageIO:
    """The PackageFiles port over this module's functions."""

    def read_head(self, path: Path) -> tuple[bytes, bytes]:
        return read_head(path)

    def extract(self, path: Path, dest: Path, manifest: Manifest, limits: Limits) -> None:
        extract(path, dest, manifest, limits)
