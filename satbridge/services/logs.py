"""Logs: list, download (offset, compression, follow, a final sha256) and the support bundle.

Only names that list() returns can be read. The bundle is a tar.gz built on the fly, chunk by
chunk: no temporary file, and nothing from the state directory (keys, trust, pairing) is in it.
Its logs and config have secrets masked by value (core/redact.py) as well as config keys by name;
a hard-linked file (possibly another name of a secret) is left out (the checked open refuses it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from satbridge.core import firewall as fw
from satbridge.core import logs as core
from satbridge.core.redact import Redactor, redact_text
from satbridge.errors import Aborted, InvalidArgument, NotFound, SatbridgeError
from satbridge.services.firewall import FirewallService
from satbridge.services.ports import Compressor, ConfigFiles, JournalPort, LogFilesPort
from satbridge.services.status import StatusService

JOURNAL_BUNDLE_LINES = 20000
COMPRESSIONS = ("", "gzip", "zstd")
CONFIG_FILE = "satbridge.toml"  # in the config directory; the bundle carries it, redacted


@dataclass(frozen=True)
class Chunk:
    offset: int  # where `data` starts in the uncompressed stream
    data: bytes
    sha256: str = ""  # on the last chunk only: of all uncompressed bytes sent


def _hash_and_pack(digest: Any, packer: Compressor, data: bytes) -> bytes:
    digest.update(data)
    return packer.compress(data)


class LogsService:
    def __init__(
        self,
        files: LogFilesPort,
        journal: JournalPort,
        compressor: Callable[[str], Compressor],
        units: tuple[str, ...],
        status: StatusService,
        firewall: FirewallService,
        config: ConfigFiles,
    ) -> None:
        self.files = files
        self.journal = journal
        self.compressor = compressor
        self.units = units
        self.status = status
        self.firewall = firewall
        self.config = config

    def list(self) -> list[core.LogSource]:
        journals = [core.LogSource(f"journal/{unit}", "journal") for unit in self.units]
        return [*self.files.list(), *journals]

    def _source(self, name: str) -> tuple[str, str]:
        """(kind, what): ("journal", unit) or ("file", "prefix/relative")."""
        core.check_name(name)
        prefix, _, rest = name.partition("/")
        if prefix == "journal":
            if rest not in self.units:
                raise NotFound(f"no log named {name!r}; see `satctl logs list`")
            return "journal", rest
        if not rest:
            raise NotFound(f"no log named {name!r}; see `satctl logs list`")
        return "file", name

    async def download(
        self,
        name: str,
        *,
        offset: int = 0,
        compression: str = "",
        follow: bool = False,
        since: float | None = None,
        lines: int = 0,
    ) -> AsyncIterator[Chunk]:
        kind, what = self._source(name)
        if compression not in COMPRESSIONS:
            raise InvalidArgument("choose one of none, gzip, zstd", field="compression")
        if since is not None and not (math.isfinite(since) and 0 <= since < 2**40):
            raise InvalidArgument("a time from 1970 on", field="since")
        if kind == "file" and (since or lines):
            raise InvalidArgument("since and lines apply to journal sources only", field="since" if since else "lines")
        if kind == "journal" and offset:
            raise InvalidArgument("journal sources start at a point in time (since), not an offset", field="offset")
        if lines < 0 or lines > 1_000_000:
            raise InvalidArgument("must be 0..1000000", field="lines")
        if kind == "file":
            prefix, _, relative = what.partition("/")
            log = await self.files.open(prefix, relative)
            try:
                if offset > log.size:
                    raise InvalidArgument(f"beyond the end of the file ({log.size} bytes)", field="offset")
                if follow:
                    log.close()  # the follower opens the name itself, and again after each rotation
                    source = self.files.follow(prefix, relative, offset)
                else:
                    source = log.chunks(offset)
                async for chunk in self._packed(source, offset, compression):
                    yield chunk
            finally:
                log.close()
        else:
            source = self.journal.lines(what, since=since, lines=lines, follow=follow)
            async for chunk in self._packed(source, offset, compression):
                yield chunk

    async def _packed(self, source: AsyncIterator[bytes], offset: int, compression: str) -> AsyncIterator[Chunk]:
        """The source compressed, each chunk with its offset; the last carries the sha256."""
        digest = hashlib.sha256()
        packer = self.compressor(compression)
        position = offset
        loop = asyncio.get_running_loop()
        async for data in source:
            if compression:  # hash and compress on a worker thread, not on the event loop
                packed = await loop.run_in_executor(None, _hash_and_pack, digest, packer, data)
                if packed:
                    yield Chunk(position, packed)
            else:  # the chunk goes out while a worker thread hashes it (issue 21)
                hashing = loop.run_in_executor(None, digest.update, data)
                try:
                    yield Chunk(position, data)
                finally:
                    await hashing
            position += len(data)
        yield Chunk(position, packer.flush(), digest.hexdigest())

    async def bundle(self) -> AsyncIterator[bytes]:
        """A tar.gz of every log, the status, firewall, network, versions and redacted config."""
        gz = self.compressor("gzip")
        now = time.time()
        for name, data in (await self._documents()).items():
            yield gz.compress(core.tar_header(f"bundle/{name}", len(data), now) + data + core.tar_padding(len(data)))
        for source in self.list():
            async for piece in self._bundle_source(source, now):
                out = gz.compress(piece)
                if out:
                    yield out
        yield gz.compress(core.TAR_END) + gz.flush()

    async def _bundle_source(self, source: core.LogSource, now: float) -> AsyncIterator[bytes]:
        member = f"bundle/logs/{source.name}"
        if source.kind == "journal":
            text = b""
            try:
                async for data in self.journal.lines(source.name.split("/", 1)[1], lines=JOURNAL_BUNDLE_LINES):
                    text += data
            except SatbridgeError as exc:
                text += f"(journal unavailable: {exc})\n".encode()
            text = redact_text(text.decode(errors="surrogateescape")).encode(errors="surrogateescape")
            yield core.tar_header(member, len(text), now) + text + core.tar_padding(len(text))
            return
        prefix, _, relative = source.name.partition("/")
        try:
            log = await self.files.open(prefix, relative)
        except SatbridgeError:
            return  # gone, or no longer a regular file, since it was listed
        try:
            size = log.size  # the header needs the size first: take the file as it is now
            yield core.tar_header(member, size, source.mtime)
            sent = 0
            redactor = Redactor()  # secrets masked by value, each with as many bytes as it had
            try:
                async for data in log.chunks(0, size):
                    out = redactor.feed(data)
                    sent += len(out)
                    yield out
            except Aborted:
                pass  # it shrank or was rewritten meanwhile: the member is padded to its size
            rest = redactor.flush()
            sent += len(rest)
            yield rest + b"\0" * (size - sent) + core.tar_padding(size)
        finally:
            log.close()

    async def _documents(self) -> dict[str, bytes]:
        def dump(value: Any) -> bytes:
            return (json.dumps(value, indent=2, default=str) + "\n").encode()

        status = await self.status.get()
        docs = {"status.json": dump(dataclasses.asdict(status))}
        try:
            state = await self.firewall.get()
            docs["firewall.json"] = dump(
                {"revision": state.revision, **fw.to_json(state.rules), "warnings": list(state.warnings)}
            )
        except SatbridgeError as exc:
            docs["firewall.json"] = dump({"error": str(exc)})
        docs["network.json"] = dump(dataclasses.asdict(status.network) if status.network else None)
        docs["versions.json"] = dump({"bridge": status.bridge_version, "xcc": status.xcc.version if status.xcc else ""})
        try:
            text = self.config.read_text(CONFIG_FILE)
            config = tomllib.loads(text) if text is not None else {"note": "no config file: the defaults apply"}
        except (OSError, tomllib.TOMLDecodeError) as exc:
            config = {"error": f"unreadable: {exc}"}
        docs["config.json"] = redact_text(dump(core.redact(config)).decode()).encode()
        return docs
