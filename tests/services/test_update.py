"""Uploads over real staging files: what is staged is known by its content, not its announcement."""

from __future__ import annotations

import hashlib

import pytest

from satbridge.errors import Aborted, InvalidArgument, NotFound
from satbridge.services.update import UpdateService
from satbridge.system.package import PackageIO
from satbridge.system.releases import Releases
from satbridge.system.staging import Staging
from tests.lab import packages


@pytest.fixture
def service(tmp_path):
    return UpdateService(Staging(tmp_path / "uploads"), Releases(tmp_path / "opt/xcc"), PackageIO())


async def _send(service: UpdateService, upload_id: str, data: bytes, start: int = 0):
    async def chunks():
        yield upload_id, start, data[start:]

    return await service.upload(chunks())


async def test_a_wrong_version_announcement_never_sticks(service, tmp_path):
    """Red team, issue 14: the right bytes announced as 7.7.7 and uploaded whole made every later
    correct announcement fail "staged as xcc 7.7.7 ... announce it as that"."""
    key = packages.trusted_key(tmp_path / "etc", tmp_path / "pkgs")
    data = packages.good(tmp_path / "pkgs", key, "1.0.0").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    wrong = await service.begin("xcc", "7.7.7", len(data), sha)
    assert (await _send(service, wrong.upload_id, data)).complete
    assert service.versions().staged == ("1.0.0",), "the staged record says what the manifest says"
    for _ in range(2):
        right = await service.begin("xcc", "1.0.0", len(data), sha)
        assert (right.upload_id, right.already_present) == (sha, True)
    with pytest.raises(InvalidArgument, match=r"1\.0\.0 by its manifest") as refused:
        await service.begin("xcc", "7.7.7", len(data), sha)
    assert refused.value.field == "version"
    assert (await service.begin("xcc", "1.0.0", len(data), sha)).already_present


async def test_a_partial_upload_takes_the_latest_label_and_keeps_its_bytes(service, tmp_path):
    key = packages.trusted_key(tmp_path / "etc", tmp_path / "pkgs")
    data = packages.good(tmp_path / "pkgs", key, "1.0.0").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    wrong = await service.begin("xcc", "7.7.7", len(data), sha)
    half = len(data) // 2
    assert not (await _send(service, wrong.upload_id, data[:half])).complete
    right = await service.begin("xcc", "1.0.0", len(data), sha)
    assert right.resume_offset == half, "a label is no reason to send the bytes again"
    assert (await _send(service, right.upload_id, data, start=half)).complete
    assert service.versions().staged == ("1.0.0",)


async def test_evicted_uploads_are_removed_off_the_loop_and_refused_meanwhile(tmp_path):
    """Issue 21: Begin unlinked the evicted uploads (512 MiB each) on the event loop, stalling
    every other call. They are removed on a thread now, and an upload chosen for removal is
    neither streamed nor announced while that runs."""
    import asyncio
    import threading

    started, release = threading.Event(), threading.Event()
    loop_thread = threading.get_ident()
    removed_on: list[int] = []

    class SlowStaging(Staging):
        def remove(self, upload_id: str) -> None:
            removed_on.append(threading.get_ident())
            started.set()
            release.wait(10)
            super().remove(upload_id)

    service = UpdateService(
        SlowStaging(tmp_path / "uploads"), Releases(tmp_path / "opt/xcc"), PackageIO(), max_staged=1
    )
    old = b"old package"
    old_id = hashlib.sha256(old).hexdigest()
    await service.begin("xcc", "1.0.0", len(old), old_id)
    await _send(service, old_id, old)
    new = b"new package"
    begin = asyncio.create_task(service.begin("xcc", "2.0.0", len(new), hashlib.sha256(new).hexdigest()))
    await asyncio.to_thread(started.wait, 10)
    try:
        assert removed_on
        assert removed_on[0] != loop_thread, "removed on a thread"
        with pytest.raises(NotFound):
            await _send(service, old_id, old)
        with pytest.raises(Aborted):
            await service.begin("xcc", "1.0.0", len(old), old_id)
    finally:
        release.set()
    await begin
    assert service.staging.meta(old_id) is None


async def test_an_upload_being_announced_is_never_evicted_under_it(tmp_path):
    """Red team 21: BeginUpload of a staged upload checked "being evicted" once, then waited on
    a thread (stale partial uploads are collected); another BeginUpload evicted it meanwhile,
    and the first answered already_present for a file that was being unlinked (the Install that
    followed was NOT_FOUND). An upload being announced is protected like one being received."""
    import asyncio
    import threading

    entered, release = threading.Event(), threading.Event()

    class SlowStaging(Staging):
        def collect_stale(self, max_age: float) -> list[str]:
            if not release.is_set() and not entered.is_set():  # the second Begin of `old` only
                entered.set()
                release.wait(10)
            return super().collect_stale(max_age)

    service = UpdateService(
        SlowStaging(tmp_path / "uploads"), Releases(tmp_path / "opt/xcc"), PackageIO(), max_staged=1
    )
    old = b"old package"
    old_id = hashlib.sha256(old).hexdigest()
    release.set()
    await service.begin("xcc", "1.0.0", len(old), old_id)
    await _send(service, old_id, old)
    release.clear()
    again = asyncio.create_task(service.begin("xcc", "1.0.0", len(old), old_id))
    await asyncio.to_thread(entered.wait, 10)
    try:
        new = b"new package"
        release_later = asyncio.get_running_loop().call_later(0.2, release.set)
        await service.begin("xcc", "2.0.0", len(new), hashlib.sha256(new).hexdigest())
    finally:
        release.set()
    release_later.cancel()
    begun = await again
    assert begun.already_present
    assert service.staging.complete(old_id), "what BeginUpload called present is still staged"
