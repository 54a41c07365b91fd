"""The one module that runs other programs (it owns `subprocess`): asyncio, with timeouts."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass

from satbridge.errors import DeadlineExceeded, Unavailable


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


async def run(argv: list[str], *, timeout: float = 30.0, stdin: bytes | None = None) -> Completed:
    """Run argv (never through a shell); kill it on timeout."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError:
        raise Unavailable(f"{argv[0]} is not installed") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise DeadlineExceeded(f"{argv[0]} did not finish within {timeout:g} s") from None
    return Completed(proc.returncode or 0, out, err)


STDERR_KEPT = 4096  # bytes of a streamed program's stderr kept for its error message


async def stream(argv: list[str], *, chunk: int = 1 << 16) -> AsyncIterator[bytes]:
    """Yield a program's stdout as it comes; the program is killed when the consumer stops.

    Raises Unavailable when the program ends with a non-zero status, with the start of its
    stderr: a failure never passes for an empty output.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except FileNotFoundError:
        raise Unavailable(f"{argv[0]} is not installed") from None
    assert proc.stdout is not None
    assert proc.stderr is not None
    errors = asyncio.create_task(_kept(proc.stderr))
    try:
        while data := await proc.stdout.read(chunk):
            yield data
        await proc.wait()
        if proc.returncode:
            message = (await errors).decode(errors="replace").strip().splitlines()
            raise Unavailable(f"{argv[0]} failed ({proc.returncode}): {message[0] if message else 'no message'}")
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        errors.cancel()
        await asyncio.gather(errors, return_exceptions=True)


async def _kept(pipe: asyncio.StreamReader) -> bytes:
    """All of a pipe read (so the program never blocks on it), its first STDERR_KEPT bytes kept."""
    kept = b""
    while data := await pipe.read(1 << 16):
        kept = (kept + data)[:STDERR_KEPT]
    return kept
