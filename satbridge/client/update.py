"""satctl's update path: announce, upload (resuming after a cut), install with progress.

result = await update(client, Path("xcc-2.4.1.tar.gz"), on_event=print)
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import grpc

from satbridge.api.v1 import update_pb2, update_pb2_grpc
from satbridge.client.errors import call, from_rpc_error
from satbridge.client.progress import Progress
from satbridge.core.package import parse_manifest
from satbridge.errors import Aborted, Unavailable
from satbridge.system.package import read_head

CHUNK = 1 << 20
RETRIES = 10


async def send_stream(call: Any, messages: AsyncIterator[Any]) -> Any:
    """Write a client stream and return the answer. When the server ends the call early (a full
    disk, a bad offset), a write fails with a transport error: the server's own status is what
    is raised then, not grpc's "Internal error from Core"."""
    try:
        async for message in messages:
            await call.write(message)
        await call.done_writing()
    except (grpc.aio.AioRpcError, grpc.aio.UsageError, RuntimeError):
        pass  # the status below says what happened
    code = await call.code()
    if code != grpc.StatusCode.OK:
        raise grpc.aio.AioRpcError(
            code, await call.initial_metadata(), await call.trailing_metadata(), details=await call.details()
        )
    return await call


def describe(path: Path) -> tuple[str, str, int, str]:
    """(name, version, size, sha256) of a package file."""
    manifest = parse_manifest(read_head(path)[0])
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(CHUNK):
            digest.update(data)
    return manifest.name, manifest.version, path.stat().st_size, digest.hexdigest()


class Updater:
    def __init__(self, channel: grpc.aio.Channel, timeout: float = 60.0) -> None:
        self.stub = cast("update_pb2_grpc.UpdateAsyncStub", update_pb2_grpc.UpdateStub(channel))
        self.timeout = timeout

    async def versions(self) -> update_pb2.GetVersionsResponse:
        return await call(
            self.stub.GetVersions(update_pb2.GetVersionsRequest(), timeout=self.timeout), "Update.GetVersions"
        )

    async def upload(self, path: Path, *, progress: bool = True, cut_after: int = 0) -> str:
        """Send the package; on a cut connection, ask where to resume and go on. Returns the
        upload id. `cut_after` (tests) ends the stream after that many bytes, like a cut."""
        name, version, size, sha256 = await asyncio.to_thread(describe, path)
        for attempt in range(RETRIES):
            try:
                begun = await self.stub.BeginUpload(
                    update_pb2.BeginUploadRequest(name=name, version=version, size=size, sha256=sha256),
                    timeout=self.timeout,
                )
                if begun.disposition == update_pb2.BeginUploadResponse.ALREADY_PRESENT:
                    return str(begun.upload_id)
                bar = Progress(size, label=f"upload {version}", start=begun.resume_offset) if progress else None
                done = await self.stub.Upload(
                    self._chunks(path, size, begun.upload_id, begun.resume_offset, bar, cut_after)
                )
                if bar:
                    bar.close()
                if done.complete:
                    return str(done.upload_id)
                if cut_after:
                    return str(done.upload_id)  # the test's cut: the caller resumes
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED) or attempt == RETRIES - 1:
                    raise from_rpc_error(exc, "upload") from None
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        raise Unavailable("the upload did not complete")

    @staticmethod
    async def _chunks(
        path: Path, size: int, upload_id: str, offset: int, bar: Progress | None, cut_after: int
    ) -> AsyncIterator[update_pb2.UploadChunk]:
        sent = 0
        if offset >= size:
            # Everything is on the satellite already (another client sent it): one empty chunk
            # names the upload, so the answer says whether it is complete.
            yield update_pb2.UploadChunk(upload_id=upload_id, offset=offset, data=b"")
            return
        with open(path, "rb") as f:  # noqa: ASYNC230 - small reads on a client's own loop
            f.seek(offset)
            while data := f.read(CHUNK if not cut_after else min(CHUNK, cut_after - sent)):
                yield update_pb2.UploadChunk(upload_id=upload_id, offset=offset, data=data)
                offset += len(data)
                sent += len(data)
                if bar:
                    bar.update(len(data))
                if cut_after and sent >= cut_after:
                    return

    async def install(
        self,
        upload_id: str,
        *,
        allow_downgrade: bool = False,
        health_gate: int = 0,
        on_event: Callable[[update_pb2.InstallEvent], None] | None = None,
    ) -> update_pb2.InstallEvent:
        last: update_pb2.InstallEvent | None = None
        try:
            async for event in self.stub.Install(
                update_pb2.InstallRequest(
                    upload_id=upload_id, allow_downgrade=allow_downgrade, health_gate_seconds=health_gate
                )
            ):
                last = event
                if on_event:
                    on_event(event)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "install") from None
        if last is None or last.phase not in (update_pb2.InstallEvent.COMMITTED, update_pb2.InstallEvent.ROLLED_BACK):
            raise Aborted("the install ended without a verdict")
        return last
