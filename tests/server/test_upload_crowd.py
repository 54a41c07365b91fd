"""Red team 21: more uploads at once than the staging keeps, some cut mid-stream and resumed,
with eviction on a thread: whatever is staged whole is exactly what was sent, nothing else is
left behind, and the paired server keeps answering."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random

import grpc

from satbridge.api.v1 import update_pb2, update_pb2_grpc
from satbridge.client.session import connect
from satbridge.services.update import MAX_STAGED
from tests.conftest import pair_with

CHUNK = 256 << 10


async def _send(stub, data: bytes, version: str, cut: int | None) -> str:
    sha = hashlib.sha256(data).hexdigest()
    try:
        begun = await stub.BeginUpload(
            update_pb2.BeginUploadRequest(name="xcc", version=version, size=len(data), sha256=sha), timeout=30
        )
    except grpc.aio.AioRpcError as exc:  # ABORTED while it is evicted is an answer
        return exc.code().name
    if begun.disposition == update_pb2.BeginUploadResponse.ALREADY_PRESENT:
        return "present"
    start = begun.resume_offset
    end = len(data) if cut is None else min(len(data), start + cut)

    async def chunks():
        for at in range(start, end, CHUNK):
            yield update_pb2.UploadChunk(upload_id=begun.upload_id, offset=at, data=data[at : min(end, at + CHUNK)])
            await asyncio.sleep(0)

    try:
        done = await stub.Upload(chunks(), timeout=60)
    except grpc.aio.AioRpcError as exc:  # NOT_FOUND or ABORTED under eviction are answers
        return exc.code().name
    return "complete" if done.complete else "partial"


async def test_a_crowd_of_uploads_over_the_cap_stays_consistent(running, inventory):
    sat = await pair_with(running, inventory)
    staging = running.bridge.update.staging
    rng = random.Random(21)
    payloads = [os.urandom(rng.randrange(1, 3) << 20) for _ in range(3 * MAX_STAGED)]
    async with connect(sat, inventory) as client:
        stub = update_pb2_grpc.UpdateStub(client.channel)
        for _round in range(3):
            cuts = [rng.choice([None, CHUNK, 3 * CHUNK]) for _ in payloads]
            answers = await asyncio.gather(
                *(_send(stub, data, f"1.0.{i}", cut) for i, (data, cut) in enumerate(zip(payloads, cuts, strict=True)))
            )
            assert "INTERNAL" not in answers, answers
        assert (await client.status()).bridge_version
        # The cap is kept at BeginUpload (streams being received are never cut): one more new
        # upload brings the staging back to it.
        last = os.urandom(1 << 20)
        payloads.append(last)
        assert await _send(stub, last, "2.0.0", None) == "complete"
    by_sha = {hashlib.sha256(d).hexdigest(): d for d in payloads}
    names = sorted(p.name for p in staging.directory.iterdir())
    ids = {n.split(".", 1)[0] for n in names if n.endswith((".part", ".pkg", ".meta.json"))}
    assert all(n.endswith((".part", ".pkg", ".meta.json")) for n in names), f"left behind: {names}"
    assert len(ids) <= MAX_STAGED, names
    for upload_id in ids:
        assert upload_id in by_sha, names
        if staging.complete(upload_id):
            assert staging.package(upload_id).read_bytes() == by_sha[upload_id]
        else:
            part = staging.directory / f"{upload_id}.part"
            if part.exists():
                got = part.read_bytes()
                assert got == by_sha[upload_id][: len(got)], "a partial upload holds a prefix of what was sent"
