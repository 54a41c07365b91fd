"""Uploads over real staging files: what is staged is known by its content, not its announcement."""

from __future__ import annotations

import hashlib

import pytest

from satbridge.errors import InvalidArgument
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
