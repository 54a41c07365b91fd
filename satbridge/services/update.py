"""Update transfer: announce (BeginUpload), resumable chunked upload, and the versions check.

An upload is identified by its content: its id is the package's sha256, so announcing the same
file again finds its partial upload and resumes it from the last durable offset. A size that
disagrees with the staged one restarts a partial upload, or is refused for a whole one. The
announced name and version are only labels until the bytes are there: once the upload is whole,
the staged record takes them from the package's own manifest, and later announcements are
checked against that. A wrong announcement never sticks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from satbridge.core.package import check_name, check_sha256, check_upload_id, check_version, parse_manifest
from satbridge.errors import Aborted, InvalidArgument, NotFound, ResourceExhausted
from satbridge.services.ports import PackageFiles, ReleasesPort, StagingPort

log = logging.getLogger(__name__)

RESERVE = 64 << 20  # never fill the disk to the last byte
STALE_AFTER = 24 * 3600.0
MAX_STAGED = 4  # uploads kept on disk (whole or partial) besides the installed releases


@dataclass(frozen=True)
class Begun:
    upload_id: str
    resume_offset: int
    already_present: bool


@dataclass(frozen=True)
class Uploaded:
    upload_id: str
    size: int
    sha256: str
    complete: bool


@dataclass(frozen=True)
class Versions:
    running: str
    previous: str
    staged: tuple[str, ...]


class UpdateService:
    def __init__(
        self,
        staging: StagingPort,
        releases: ReleasesPort,
        packages: PackageFiles,
        *,
        max_size: int = 1 << 30,
        max_staged: int = MAX_STAGED,
        pinned: set[str] | None = None,
    ) -> None:
        self.staging = staging
        self.releases = releases
        self.packages = packages
        self.max_size = max_size
        self.max_staged = max_staged
        self.pinned = pinned if pinned is not None else set()  # in use elsewhere (an install): kept
        self._active: set[str] = set()
        self._evicting: set[str] = set()  # being removed on a thread to make room
        self._announcing: dict[str, int] = {}  # BeginUpload calls under way, per upload: never evicted

    async def begin(self, name: str, version: str, size: int, sha256: str) -> Begun:
        check_name(name)
        check_version(version)
        check_sha256(sha256)
        if size <= 0:
            raise InvalidArgument("the package size in bytes", field="size")
        if size > self.max_size:
            raise ResourceExhausted(f"packages are limited to {self.max_size} bytes; this one is {size}")
        upload_id = sha256
        if upload_id in self._evicting:
            raise Aborted(f"upload {upload_id[:16]}... is being removed to make room; try again")
        # From here to the answer this upload is protected from eviction like one being received:
        # the awaits below let another BeginUpload choose it (red team 21: the answer then named
        # a file being unlinked).
        self._announcing[upload_id] = self._announcing.get(upload_id, 0) + 1
        try:
            return await self._begin(upload_id, name, version, size, sha256)
        finally:
            left = self._announcing.pop(upload_id) - 1
            if left:
                self._announcing[upload_id] = left

    async def _begin(self, upload_id: str, name: str, version: str, size: int, sha256: str) -> Begun:
        if self.releases.current() == version:
            return Begun(upload_id, size, already_present=True)
        await asyncio.to_thread(self.staging.collect_stale, STALE_AFTER)
        announced = {"name": name, "version": version, "size": size, "sha256": sha256}
        meta = self.staging.meta(upload_id)
        if meta is not None and meta.get("size") == size and (meta.get("name"), meta.get("version")) != (name, version):
            if meta.get("identified"):
                # The package's own manifest named it when it was whole: that is what it is.
                raise InvalidArgument(
                    f"this file (sha256 {sha256[:16]}...) is {meta.get('name')} {meta.get('version')} by its "
                    f"manifest, not {name} {version}",
                    field="version" if meta.get("name") == name else "name",
                )
            # Only a label so far (the bytes are not all there): the latest announcement wins.
            await asyncio.to_thread(self.staging.relabel, upload_id, name, version, identified=False)
            meta = self.staging.meta(upload_id)
        if meta is not None and any(meta.get(k) != v for k, v in announced.items()):
            if self.staging.complete(upload_id):
                raise InvalidArgument(
                    f"this file (sha256 {sha256[:16]}...) is staged with {meta.get('size')} bytes; "
                    f"{size} is not its size",
                    field="size",
                )
            if upload_id in self._active:
                raise Aborted(f"upload {upload_id[:16]}... is being received with another announcement; try again")
            log.info("upload %s announced anew (%s, was %s): restarting it", upload_id[:16], announced, meta)
            await asyncio.to_thread(self.staging.remove, upload_id)
            meta = None
        if meta and self.staging.complete(upload_id):
            return Begun(upload_id, size, already_present=True)
        if meta is None:
            # A new upload: the oldest others go first, so uploads that are never installed
            # cannot fill the disk or grow every scan of the staging directory. Chosen on the
            # loop, where `upload()` marks a stream active, so the two never interleave (a
            # handful of small files); removed on a thread (unlinking 512 MiB held the loop for
            # tens of ms, issue 21), marked meanwhile so that no stream or announcement uses them.
            protect = self._active | self._evicting | self._announcing.keys() | self.pinned | {upload_id}
            evicted = self.staging.evictable(self.max_staged - 1, protect)
            if evicted:
                self._evicting.update(evicted)
                try:
                    await asyncio.to_thread(self._remove_all, evicted)
                finally:
                    self._evicting.difference_update(evicted)
                log.info("staged uploads removed to make room (at most %d kept): %s", self.max_staged, evicted)
        done = self.staging.progress(upload_id)
        if size - done > self.staging.free_bytes() - RESERVE:
            raise ResourceExhausted(f"not enough free disk space for {size - done} more bytes")
        await asyncio.to_thread(self.staging.begin, upload_id, announced)
        return Begun(upload_id, done, already_present=False)

    def _remove_all(self, upload_ids: list[str]) -> None:
        for upload_id in upload_ids:
            self.staging.remove(upload_id)

    async def upload(self, chunks: AsyncIterator[tuple[str, int, bytes | memoryview]]) -> Uploaded:
        """Receive {upload_id, offset, data} chunks; check the whole file's sha256 at the end."""
        first = await anext(chunks, None)
        if first is None:
            raise InvalidArgument("the stream carried no chunk", field="chunks")
        upload_id, offset, _ = first
        check_upload_id(upload_id)
        if upload_id in self._evicting:
            raise NotFound(f"upload {upload_id!r} is being removed to make room; call BeginUpload again")
        meta = self.staging.meta(upload_id)
        if meta is None:
            raise NotFound(f"no upload {upload_id!r}; call BeginUpload first", field="upload_id")
        if self.staging.complete(upload_id):
            return Uploaded(upload_id, meta["size"], meta["sha256"], complete=True)
        if upload_id in self._active:
            raise Aborted(f"upload {upload_id} is already being received on another stream")
        self._active.add(upload_id)
        writer = self.staging.writer(upload_id)
        closed = False
        try:
            if offset != writer.size:
                raise InvalidArgument(f"expected offset {writer.size}, got {offset}", field="offset")
            await writer.start()
            size = int(meta["size"])
            chunk: tuple[str, int, bytes | memoryview] | None = first
            while chunk is not None:
                cid, coffset, cdata = chunk
                if cid != upload_id:
                    raise InvalidArgument("one upload per stream", field="upload_id")
                if coffset != writer.size:
                    raise InvalidArgument(f"expected offset {writer.size}, got {coffset}", field="offset")
                if writer.size + len(cdata) > size:
                    raise InvalidArgument(f"more bytes than the announced {size}", field="data")
                await writer.write(cdata)
                chunk = await anext(chunks, None)
            received = writer.size
            closed = True
            digest = await writer.close()
            if received < size:
                return Uploaded(upload_id, received, "", complete=False)
            if digest != meta["sha256"]:
                await asyncio.to_thread(self.staging.discard_part, upload_id)
                raise InvalidArgument(
                    f"the file's sha256 is {digest}, not the announced one; it was discarded", field="sha256"
                )
            await asyncio.to_thread(self.staging.promote, upload_id)
            await asyncio.to_thread(self._identify, upload_id, meta)
            return Uploaded(upload_id, received, digest, complete=True)
        finally:
            if not closed:
                try:
                    await writer.close()  # a cut connection: keep what arrived, durably
                except Exception as exc:  # noqa: BLE001 - the original error matters more
                    log.warning("closing upload %s: %s", upload_id, exc)
            self._active.discard(upload_id)

    def _identify(self, upload_id: str, meta: dict[str, object]) -> None:
        """Label a whole upload with the name and version its manifest gives, not the announced
        ones. A file that is no readable package keeps its labels: the install refuses it."""
        try:
            manifest = parse_manifest(self.packages.read_head(self.staging.package(upload_id))[0])
        except InvalidArgument as exc:
            log.info("upload %s is not a readable package (%s); the install will say so", upload_id[:16], exc)
            return
        if (manifest.name, manifest.version) != (meta.get("name"), meta.get("version")):
            log.warning(
                "upload %s was announced as %s %s; its manifest says %s %s",
                upload_id[:16], meta.get("name"), meta.get("version"), manifest.name, manifest.version,
            )  # fmt: skip
        self.staging.relabel(upload_id, manifest.name, manifest.version, identified=True)

    def versions(self) -> Versions:
        staged = tuple(sorted({str(m["version"]) for m in self.staging.staged()}))
        return Versions(self.releases.current(), self.releases.previous(), staged)
