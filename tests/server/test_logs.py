"""Logs over gRPC against real files (sandbox bridge in-process)."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import tarfile

import grpc
import pytest

from satbridge.api.v1 import logs_pb2, logs_pb2_grpc
from satbridge.client.session import connect, management_channel
from satbridge.errors import Aborted, PermissionDenied
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
        ("xcc//xcc.log", grpc.StatusCode.INVALID_ARGUMENT),  # was PERMISSION_DENIED "outside" (red team 20)
        ("xcc/xcc.log/", grpc.StatusCode.INVALID_ARGUMENT),  # was served as the file
        ("xcc/./xcc.log", grpc.StatusCode.INVALID_ARGUMENT),
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


class Following:
    """`satctl logs get NAME --follow` through the client library, in the background."""

    def __init__(self, client, name: str) -> None:
        self.received = bytearray()
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run(client, name))

    async def _run(self, client, name: str) -> None:
        try:
            async for chunk in client.logs_stream(logs_pb2.DownloadLogRequest(name=name, follow=True)):
                self.received.extend(chunk.data)
        except Exception as exc:  # the test inspects how it ended
            self.error = exc

    async def until(self, text: bytes) -> None:
        for _ in range(200):
            if text in self.received:
                return
            assert self.error is None, f"the follow ended: {self.error!r}"
            await asyncio.sleep(0.025)
        raise AssertionError(f"{text!r} never arrived; got {bytes(self.received)[-200:]!r}")

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_follow_goes_where_a_re_pointed_symlink_goes(client, running):
    logdir = running.bridge.config.paths.xcc_log_dir
    (logdir / "app-1.log").write_text("one\n")
    (logdir / "app-2.log").write_text("")
    (logdir / "current.log").symlink_to("app-1.log")
    follow = Following(client, "xcc/current.log")
    try:
        await follow.until(b"one\n")
        (logdir / "next").symlink_to("app-2.log")
        (logdir / "next").rename(logdir / "current.log")  # ln -sfn app-2.log current.log
        with open(logdir / "app-2.log", "a") as f:
            f.write("two\n")
        await follow.until(b"two\n")
    finally:
        await follow.stop()


@pytest.mark.parametrize("replacement", ["link-out", "fifo"])
async def test_follow_reopens_through_the_same_checks_and_never_freezes_the_bridge(
    client, running, tmp_path, replacement
):
    """Rotate a followed log and put a link to a file outside, or a FIFO, under its name: nothing
    of the outside file is streamed, the follow ends PERMISSION_DENIED, and every other RPC keeps
    answering meanwhile (the FIFO's open once blocked the event loop)."""
    logdir = running.bridge.config.paths.xcc_log_dir
    path = logdir / "swap.log"
    path.write_text("mine\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("SECRET from outside the log directory\n")
    follow = Following(client, "xcc/swap.log")
    try:
        await follow.until(b"mine\n")
        path.rename(logdir / "swap.log.1")
        if replacement == "fifo":
            os.mkfifo(path)
        else:
            path.symlink_to(outside)
        for _ in range(5):
            status = await asyncio.wait_for(client.status(), 3)  # the bridge still answers
            assert status.hostname
            await asyncio.sleep(0.2)
        await asyncio.wait_for(asyncio.shield(follow.task), 10)
        assert isinstance(follow.error, PermissionDenied), follow.error
        assert b"SECRET" not in follow.received
    finally:
        await follow.stop()


async def test_a_download_truncated_under_it_is_not_a_success(client, running):
    path = running.bridge.config.paths.xcc_log_dir / "big.log"
    path.write_bytes(b"z" * (64 << 20))

    async def download() -> None:
        received = 0
        async for chunk in client.logs_stream(logs_pb2.DownloadLogRequest(name="xcc/big.log")):
            if not received:
                os.truncate(path, 1 << 20)
            received += len(chunk.data)

    with pytest.raises(Aborted, match="truncated while it was sent"):
        await download()


async def test_the_bundle_leaves_out_hard_links_and_masks_secrets_by_value(client, running):
    logdir = running.bridge.config.paths.xcc_log_dir
    state = running.bridge.config.paths.state_dir
    os.link(state / "identity.key", logdir / "innocent.log")  # another name of the identity key
    (logdir / "app.log").write_text(
        "connecting to https://admin:s3cr3t-url@db.invalid/x\n"
        "env DB_PASSWORD=hunter2-env\n"
        "-----BEGIN RSA PRIVATE KEY-----\nBODYOFTHEKEY\n-----END RSA PRIVATE KEY-----\n"
        "a normal line\n"
    )
    data = b""
    async for chunk in client.logs_stream(None):
        data += chunk.data
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
        app = tar.extractfile("bundle/logs/xcc/app.log").read()
    assert "bundle/logs/xcc/innocent.log" not in names
    assert b"PRIVATE KEY-----\n" + b"*" * len("BODYOFTHEKEY") in app
    for secret in (b"s3cr3t-url", b"hunter2-env", b"BODYOFTHEKEY"):
        assert secret not in gzip.decompress(data)
    assert b"a normal line\n" in app
