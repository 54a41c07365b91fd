"""Log files on disk: confined listing and reading, and `tail -F` that survives rotation."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

from satbridge.core.logs import LogSource
from satbridge.errors import NotFound, PermissionDenied

CHUNK = 1 << 20


class LogFiles:
    """Files under named roots: {"xcc": /var/log/xcc, "satbridge": /var/log/satbridge}."""

    def __init__(self, roots: dict[str, Path]) -> None:
        self.roots = roots

    def list(self) -> list[LogSource]:
        found = []
        for prefix, root in self.roots.items():
            if not root.is_dir():
                continue
            base = root.resolve()
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = sorted(d for d in dirnames if not (Path(dirpath) / d).is_symlink())
                for name in sorted(filenames):
                    path = Path(dirpath) / name
                    try:
                        real = self.confine(prefix, str(path.relative_to(base)))
                        st = real.stat()
                    except (NotFound, PermissionDenied, OSError):
                        continue
                    found.append(LogSource(f"{prefix}/{path.relative_to(base)}", "file", st.st_size, st.st_mtime))
        return found

    def confine(self, prefix: str, relative: str) -> Path:
        """The real path of a log file, refusing anything that leaves its root."""
        root = self.roots.get(prefix)
        if root is None:
            raise NotFound(f"no log source {prefix}/{relative}")
        base = root.resolve()
        real = (base / relative).resolve()
        if not real.is_relative_to(base):
            raise PermissionDenied(f"{prefix}/{relative} points outside the log directory")
        try:
            st = real.stat()
        except FileNotFoundError:
            raise NotFound(f"no log file {prefix}/{relative}") from None
        if not stat.S_ISREG(st.st_mode):
            raise PermissionDenied(f"{prefix}/{relative} is not a regular file")
        return real

    async def read(self, path: Path, offset: int) -> AsyncIterator[bytes]:
        """The file from `offset` to its end as it is now, in 1 MiB chunks."""
        fd = await asyncio.to_thread(os.open, path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            position = offset
            while position < size:
                data = await asyncio.to_thread(os.pread, fd, min(CHUNK, size - position), position)
                if not data:
                    break
                position += len(data)
                yield data
        finally:
            os.close(fd)

    async def follow(self, path: Path, offset: int, *, poll: float = 0.2) -> AsyncIterator[bytes]:
        """Like `tail -F`: new data as it is written; after a rotation (a new file under the
        name) the old one is read to its end and the new one from its start; after a truncation,
        from the start again. Ends only when the consumer stops."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        position = offset
        try:
            while True:
                data = await asyncio.to_thread(os.pread, fd, CHUNK, position)
                if data:
                    position += len(data)
                    yield data
                    continue
                try:
                    current = os.stat(path)
                except FileNotFoundError:
                    current = None
                mine = os.fstat(fd)
                if current is not None and (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev):
                    os.close(fd)  # rotated, and the old file is read to its end
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    position = 0
                    continue
                if mine.st_size < position:  # truncated in place
                    position = 0
                    continue
                await asyncio.sleep(poll)
        finally:
            os.close(fd)
