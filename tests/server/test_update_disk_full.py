"""A full disk: RESOURCE_EXHAUSTED, at BeginUpload or in the middle, and a healthy bridge."""

from __future__ import annotations

import hashlib
import os
import subprocess

import grpc
import pytest

from satbridge.api.v1 import update_pb2, update_pb2_grpc
from satbridge.client.session import connect
from satbridge.client.update import send_stream
from tests.conftest import loopback_config, pair_with, serve_bridge

pytestmark = pytest.mark.lab
MIB = 1 << 20


@pytest.fixture
async def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "satbridge-test", str(mount)], check=True)  # noqa: ASYNC221
    try:
        async with serve_bridge(loopback_config(mount / "root")) as run:
            yield run, mount
    finally:
        done = subprocess.run(["umount", str(mount)], check=False, capture_output=True)  # noqa: ASYNC221
        # busy: the stopped bridge still held a file there (the audit tail did: a leaked mount)
        assert done.returncode == 0, done.stderr


async def test_disk_full_is_resource_exhausted_and_the_bridge_stays_healthy(small_disk, inventory):
    run, mount = small_disk
    sat = await pair_with(run, inventory)
    data = os.urandom(16 * MIB)
    sha = hashlib.sha256(data).hexdigest()
    async with connect(sat, inventory) as client:
        stub = update_pb2_grpc.UpdateStub(client.channel)
        with pytest.raises(grpc.aio.AioRpcError) as exc:  # 100 MiB can never fit
            await stub.BeginUpload(
                update_pb2.BeginUploadRequest(name="xcc", version="1.0.0", size=100 * MIB, sha256="c" * 64)
            )
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        begun = await stub.BeginUpload(
            update_pb2.BeginUploadRequest(name="xcc", version="1.0.0", size=len(data), sha256=sha)
        )
        with open(mount / "filler", "wb") as f:  # someone else fills the disk meanwhile
            try:
                while True:
                    f.write(b"\0" * MIB)
                    f.flush()
            except OSError:
                pass

        async def chunks():
            for i in range(0, len(data), MIB):
                yield update_pb2.UploadChunk(upload_id=begun.upload_id, offset=i, data=data[i : i + MIB])

        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await send_stream(stub.Upload(), chunks())
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "disk is full" in exc.value.details()
        status = await client.status()  # still serving, and saying how full it is
        assert status.disk.free_bytes < MIB
        (mount / "filler").unlink()  # space comes back: the upload resumes where it stopped
        again = await stub.BeginUpload(
            update_pb2.BeginUploadRequest(name="xcc", version="1.0.0", size=len(data), sha256=sha)
        )
        offset = again.resume_offset

        async def rest():
            for i in range(offset, len(data), MIB):
                yield update_pb2.UploadChunk(upload_id=begun.upload_id, offset=i, data=data[i : i + MIB])

        done = await send_stream(stub.Upload(), rest())
        assert done.complete
        assert done.sha256 == sha
