"""Staged uploads' announcements through the one checked loader (red team 18, finding 4)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import pytest

from satbridge.errors import SatbridgeError
from satbridge.system.staging import Staging
from satbridge.wiring import wire
from tests.conftest import loopback_config

OTHER = "ef" * 32
MINE = "cd" * 32


async def test_a_fifo_for_an_announcement_never_blocks_the_bridge(tmp_path):
    """A FIFO in place of another upload's <id>.meta.json blocked BeginUpload, and with it the
    whole event loop (every RPC), until someone opened it for writing."""
    bridge = wire(loopback_config(tmp_path / "root"))
    uploads = bridge.config.paths.state_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    fifo = uploads / f"{OTHER}.meta.json"
    os.mkfifo(fifo)
    unblocked = threading.Event()

    def unblock_later() -> None:  # so a regression fails the test instead of hanging it
        if not unblocked.wait(5):
            os.close(os.open(fifo, os.O_WRONLY))

    threading.Thread(target=unblock_later, daemon=True).start()
    try:
        began = time.monotonic()
        begun = await bridge.update.begin("xcc", "1.0.0", 10, MINE)
        took = time.monotonic() - began
    finally:
        unblocked.set()
        await bridge.aclose()
    assert took < 2, took
    assert begun.upload_id == MINE


@pytest.mark.parametrize(
    "meta",
    [
        {"name": "xcc"},
        {"name": "xcc", "version": "1.0.0", "size": "NaN", "sha256": MINE},
        {"name": "xcc", "version": "1.0.0", "size": -1, "sha256": MINE},
        {"name": 2, "version": {}, "size": 10, "sha256": 1},
        ["a", "list"],
    ],
)
async def test_an_announcement_of_the_wrong_shape_is_a_damaged_upload(tmp_path, meta):
    """Wrong-shaped JSON gave KeyError/ValueError (INTERNAL) in ListVersions and UploadChunk;
    now it is a damaged partial upload: ignored, and replaced by the next announcement."""
    bridge = wire(loopback_config(tmp_path / "root"))
    uploads = bridge.config.paths.state_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    (uploads / f"{MINE}.meta.json").write_text(json.dumps(meta))
    (uploads / f"{MINE}.pkg").write_bytes(b"x")
    try:
        staging = Staging(uploads)
        assert staging.meta(MINE) is None
        assert staging.staged() == []
        await asyncio.to_thread(bridge.update.versions)  # no KeyError

        async def chunks():
            yield (MINE, 0, b"x")

        (uploads / f"{MINE}.pkg").rename(uploads / f"{MINE}.part")
        with pytest.raises(SatbridgeError) as exc:
            await bridge.update.upload(chunks())
        assert exc.value.kind.name != "INTERNAL"
        begun = await bridge.update.begin("xcc", "1.0.0", 10, MINE)  # a new announcement replaces it
        assert begun.upload_id == MINE
        assert staging.meta(MINE) is not None
    finally:
        await bridge.aclose()


def test_an_unreadable_or_fifo_installed_record_is_none(tmp_path):
    os.mkfifo(tmp_path / "installed.json")
    assert Staging(tmp_path).installed() == ("", "")
