"""Update over gRPC: resumable transfer (cut at random offsets), ALREADY_PRESENT, versions."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random

import grpc
import pytest

from satbridge.api.v1 import update_pb2, update_pb2_grpc
from satbridge.client.package import build
from satbridge.client.session import connect, management_channel
from satbridge.client.update import Updater
from tests.conftest import pair_with
from tests.lab import packages


@pytest.fixture
async def updater(running, inventory, tmp_path):
    sat = await pair_with(running, inventory)
    async with connect(sat, inventory) as client:
        yield Updater(client.channel)


async def test_resume_after_20_cuts(updater, running, tmp_path):
    source = tmp_path / "src"
    (source / "payload/bin").mkdir(parents=True)
    (source / "payload/bin/xcc").write_text("#!/bin/sh\n")
    (source / "payload/blob").write_bytes(random.randbytes(24 << 20))
    (source / "package.json").write_text('{"name": "xcc", "version": "7.0.0", "command": ["bin/xcc"]}')
    key = packages.trusted_key(running.bridge.config.paths.config_dir, tmp_path)
    path = tmp_path / "big.tar"
    build(source, key.read_bytes(), path, compression="")
    data = path.read_bytes()
    staging = running.bridge.update.staging
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(data)), 20))
    upload_id = ""
    sent = 0
    for cut in cuts:
        # Each session sends from where the satellite says, and is cut `cut - sent` bytes later.
        upload_id = await updater.upload(path, progress=False, cut_after=max(1, cut - sent)) or upload_id
        sent = staging.progress(upload_id)
        assert sent == cut or sent >= cuts[-1], f"resumed at {sent}, cut at {cut}"
    upload_id = await updater.upload(path, progress=False)
    assert staging.complete(upload_id)
    assert hashlib.sha256(staging.package(upload_id).read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


async def test_announcing_again_is_already_present_and_versions_list_it(updater, running, tmp_path):
    key = packages.trusted_key(running.bridge.config.paths.config_dir, tmp_path)
    path = packages.good(tmp_path, key, "4.0.0")
    upload_id = await updater.upload(path, progress=False)
    assert (await updater.versions()).staged == ["4.0.0"]
    begun = await updater.stub.BeginUpload(
        update_pb2.BeginUploadRequest(
            name="xcc", version="4.0.0", size=path.stat().st_size, sha256=hashlib.sha256(path.read_bytes()).hexdigest()
        )
    )
    assert begun.disposition == update_pb2.BeginUploadResponse.ALREADY_PRESENT
    assert begun.upload_id == upload_id


@pytest.mark.parametrize(
    ("request_", "code", "field"),
    [
        ({"name": "XCC", "version": "1.0.0", "size": 1, "sha256": "a" * 64}, "INVALID_ARGUMENT", "name"),
        ({"name": "xcc", "version": "v1", "size": 1, "sha256": "a" * 64}, "INVALID_ARGUMENT", "version"),
        ({"name": "xcc", "version": "1.0.0", "size": 0, "sha256": "a" * 64}, "INVALID_ARGUMENT", "size"),
        ({"name": "xcc", "version": "1.0.0", "size": 1, "sha256": "zz"}, "INVALID_ARGUMENT", "sha256"),
        ({"name": "xcc", "version": "1.0.0", "size": 1 << 40, "sha256": "a" * 64}, "RESOURCE_EXHAUSTED", ""),
    ],
)
async def test_begin_upload_validates(running, inventory, request_, code, field):
    sat = await pair_with(running, inventory)
    async with management_channel(sat, inventory.client_key()) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await update_pb2_grpc.UpdateStub(channel).BeginUpload(update_pb2.BeginUploadRequest(**request_))
    assert exc.value.code().name == code
    assert field in exc.value.details()


async def test_wrong_offset_and_wrong_hash(updater, running, tmp_path):
    path = tmp_path / "x.pkg"
    path.write_bytes(b"A" * 5000)
    begun = await updater.stub.BeginUpload(
        update_pb2.BeginUploadRequest(name="xcc", version="9.9.0", size=5000, sha256="b" * 64)
    )

    async def chunks(offset):
        yield update_pb2.UploadChunk(upload_id=begun.upload_id, offset=offset, data=b"A" * (5000 - offset))

    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await updater.stub.Upload(chunks(10))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "offset" in exc.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await updater.stub.Upload(chunks(0))
    assert "sha256" in exc.value.details()
    assert running.bridge.update.staging.progress(begun.upload_id) == 0, "a bad upload is discarded"


async def test_only_the_newest_uploads_stay_staged(updater, running, tmp_path):
    """Uploads never installed do not pile up: a new one removes the oldest beyond four."""
    key = packages.trusted_key(running.bridge.config.paths.config_dir, tmp_path)
    staging = running.bridge.update.staging
    ids = []
    for n in range(6):
        ids.append(await updater.upload(packages.good(tmp_path, key, f"5.{n}.0"), progress=False))
        # "created" orders the eviction; a second's resolution is not promised by every clock
        meta_path = staging.directory / f"{ids[-1]}.meta.json"
        meta_path.write_text(json.dumps({**staging.meta(ids[-1]), "created": 1000.0 + n}))
    assert (await updater.versions()).staged == ["5.2.0", "5.3.0", "5.4.0", "5.5.0"]
    assert not staging.complete(ids[0])
    assert not staging.complete(ids[1])
    assert staging.meta(ids[0]) is None


async def test_an_upload_being_installed_is_never_evicted(updater, running, tmp_path):
    key = packages.trusted_key(running.bridge.config.paths.config_dir, tmp_path)
    staging = running.bridge.update.staging
    first = await updater.upload(packages.good(tmp_path, key, "6.0.0"), progress=False)
    running.bridge.install.installing.add(first)  # as install() does while it runs
    try:
        for n in range(1, 6):
            await updater.upload(packages.good(tmp_path, key, f"6.{n}.0"), progress=False)
        assert staging.complete(first)
        assert len((await updater.versions()).staged) == 4
    finally:
        running.bridge.install.installing.discard(first)


def test_announced_uploads_are_kept_until_their_bytes_come(tmp_path):
    from satbridge.system.staging import Staging

    staging = Staging(tmp_path / "uploads")
    for n in range(5):
        staging.begin(f"xcc-1.{n}.0-abc", {"name": "xcc", "version": f"1.{n}.0", "size": 1, "sha256": "0" * 64})
    assert staging.evict_oldest(1, set()) == [], "announced a moment ago: their clients are about to send"
    assert len(staging.evict_oldest(1, {"xcc-1.0.0-abc"}, fresh_seconds=0)) == 4
    assert staging.meta("xcc-1.0.0-abc") is not None, "protected"


async def test_a_wrong_declared_size_does_not_stick(updater, running, tmp_path):
    """Issue 14, case 4: a client announcing half the size fails; the correct upload then works."""
    key = packages.trusted_key(running.bridge.config.paths.config_dir, tmp_path)
    path = packages.good(tmp_path, key, "8.0.0")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    begun = await updater.stub.BeginUpload(
        update_pb2.BeginUploadRequest(name="xcc", version="8.0.0", size=len(data) // 2, sha256=sha)
    )

    async def chunks():
        yield update_pb2.UploadChunk(upload_id=begun.upload_id, offset=0, data=data)

    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await updater.stub.Upload(chunks())
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    upload_id = await updater.upload(path, progress=False)
    staging = running.bridge.update.staging
    assert staging.complete(upload_id)
    assert upload_id == sha, "an upload is named by its content"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await updater.stub.BeginUpload(
            update_pb2.BeginUploadRequest(name="xcc", version="8.0.0", size=len(data) + 1, sha256=sha)
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert staging.complete(upload_id), "a wrong announcement of a whole upload changes nothing"
    assert (await updater.upload(path, progress=False)) == upload_id


async def test_install_progress_reaches_event_subscribers(updater, running, inventory, tmp_path):
    """Each InstallEvent the caller gets is an `install` event for every WatchEvents subscriber
    too (with the phase by name), in the same order."""
    from satbridge.core import events as ev
    from satbridge.errors import SatbridgeError

    key = packages.trusted_key(running.bridge.config.paths.config_dir, tmp_path)
    upload_id = await updater.upload(packages.good(tmp_path, key, "5.0.0"), progress=False)
    bus = running.bridge.events
    sub = bus.subscribe()
    phases: list[str] = []
    # No systemd here: how far it gets does not matter, only that what it sent was published.
    with contextlib.suppress(SatbridgeError):
        await updater.install(upload_id, on_event=lambda e: phases.append(update_pb2.InstallEvent.Phase.Name(e.phase)))
    assert phases
    published = [item.payload for item in await sub.read(1.0) if isinstance(item, ev.Event)]
    assert [p.phase for p in published if isinstance(p, ev.InstallProgress)] == phases
    sub.close()
