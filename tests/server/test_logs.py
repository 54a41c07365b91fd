"""Logs over gRPC against real files (sandbox bridge in-process)."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import tarfile

import grpc
import pytest

from satbridge.api.v1 import logs_pb2, logs_pb2_grpc
from satbridge.client.session import connect, management_channel
from satbridge.system.compress import decompressor
from tests.conftest import pair_with


@pytest.fixture
async def client(running, inventory):
    sat = await pair_with(running, inventory)
    logdir = running.bridge.config.paths.xcc_log_dir
    logdir.mkdir(parents=True, exist_ok=True)
    (logdir / "xcc.log").write_bytes(b"".join(b"line %d\n" % i for i in range(50000)))
    (logdir / "calls").mkdir()
    (logdir / "calls" / "cdr.log").write_text("call 1\n")
    async with connect(sat, inventory) as c:
        yield c


async def fetch(client, name: str, **kw) -> tuple[bytes, str]:
    unpack = decompressor({1: "gzip", 2: "zstd"}.get(kw.get("compression", 0), ""))
    data, sha = b"", ""
    async for chunk in client.logs_stream(logs_pb2.DownloadLogRequest(name=name, **kw)):
        data += unpack.decompress(chunk.data)
        sha = chunk.sha256 or sha
    return data, sha


async def test_list_names_files_audit_and_journals(client):
    names = {s.name: s for s in await client.logs_list()}
    assert names["xcc/xcc.log"].size == sum(len(b"line %d\n" % i) for i in range(50000))
    assert {
        "xcc/xcc.log",
        "xcc/calls/cdr.log",
        "satbridge/audit.log",
        "journal/xcc.service",
        "journal/satbridge.service",
    } <= set(names)
    assert names["journal/xcc.service"].kind == logs_pb2.LogSource.JOURNAL
    assert names["xcc/calls/cdr.log"].size == 7


@pytest.mark.parametrize("compression", [0, 1, 2])
async def test_download_with_sha256_and_compression(client, running, compression):
    path = running.bridge.config.paths.xcc_log_dir / "xcc.log"
    data, sha = await fetch(client, "xcc/xcc.log", compression=compression)
    assert data == path.read_bytes()
    assert sha == hashlib.sha256(data).hexdigest()


async def test_resume_from_an_offset(client, running):
    whole = (running.bridge.config.paths.xcc_log_dir / "xcc.log").read_bytes()
    tail, sha = await fetch(client, "xcc/xcc.log", offset=1000)
    assert tail == whole[1000:]
    assert sha == hashlib.sha256(whole[1000:]).hexdigest()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("../etc/passwd", grpc.StatusCode.INVALID_ARGUMENT),
        ("xcc/../../../etc/passwd", grpc.StatusCode.INVALID_ARGUMENT),
        ("/etc/passwd", grpc.StatusCode.INVALID_ARGUMENT),
        ("xcc/escape", grpc.StatusCode.PERMISSION_DENIED),  # a symlink out of the log root
        ("xcc/calls", grpc.StatusCode.PERMISSION_DENIED),  # a directory
        ("xcc/missing.log", grpc.StatusCode.NOT_FOUND),
        ("journal/sshd.service", grpc.StatusCode.NOT_FOUND),  # not a configured unit
        ("etc/passwd", grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_path_attacks_are_refused(client, running, inventory, name, code):
    (running.bridge.config.paths.xcc_log_dir / "escape").symlink_to("/etc/passwd")
    assert "xcc/escape" not in {s.name for s in await client.logs_list()}
    sat = inventory.get(None)
    async with management_channel(sat, inventory.client_key()) as channel:
        call = logs_pb2_grpc.LogsStub(channel).Download(logs_pb2.DownloadLogRequest(name=name))
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            async for _ in call:
                pass
    assert exc.value.code() == code


async def test_follow_survives_rotation_and_truncation(client, running):
    path = running.bridge.config.paths.xcc_log_dir / "live.log"
    path.write_text("first\n")
    received = bytearray()

    async def follow() -> None:
        async for chunk in client.logs_stream(logs_pb2.DownloadLogRequest(name="xcc/live.log", follow=True)):
            received.extend(chunk.data)

    async def until(text: bytes) -> None:
        for _ in range(100):
            if text in received:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text!r} never arrived; got {bytes(received)!r}")

    task = asyncio.create_task(follow())
    try:
        await until(b"first\n")
        with open(path, "a") as f:
            f.write("second\n")
        await until(b"second\n")
        path.rename(path.with_suffix(".log.1"))  # rotation: a new file takes the name
        with open(path.with_suffix(".log.1"), "a") as f:
            f.write("late to the old file\n")
        path.write_text("third, in the new file\n")
        await until(b"third, in the new file\n")
        assert b"late to the old file\n" in received, "the old file is read to its end first"
        path.write_text("")  # truncation in place
        await asyncio.sleep(0.3)
        path.write_text("fourth after truncation\n")
        await until(b"fourth after truncation\n")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_bundle_holds_logs_and_documents_but_no_secrets(client, running):
    data = b""
    async for chunk in client.logs_stream(None):
        data += chunk.data
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
    for member in (
        "bundle/status.json",
        "bundle/firewall.json",
        "bundle/network.json",
        "bundle/versions.json",
        "bundle/config.json",
        "bundle/logs/xcc/xcc.log",
        "bundle/logs/satbridge/audit.log",
        "bundle/logs/journal/xcc.service",
    ):
        assert member in names
    plain = gzip.decompress(data)
    state = running.bridge.config.paths.state_dir
    key_body = b"".join((state / "identity.key").read_bytes().splitlines()[1:-1])
    assert key_body[:40] not in plain, "the identity key never leaves the box"
    for line in (state / "identity.key").read_bytes().splitlines()[1:-1]:
        assert line not in plain
    assert (state / "trust.json").read_bytes() not in plain
    assert b"PRIVATE KEY" not in plain
