"""Journal logs from a REAL journal: the appliance's, booted in nspawn, read with journalctl -D."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from satbridge.system.journal import JournalReader
from satbridge.system.systemd import SystemdUnits
from tests.lab.appliance import booted

pytestmark = pytest.mark.lab

CHATTY = """[Service]
Type=oneshot
ExecStart=/bin/sh -c 'for i in 1 2 3 4 5; do echo "xcc says $i"; done'
RemainAfterExit=no
"""


@pytest.fixture(scope="module")
def appliance(tmp_path_factory):
    with booted("satjournal", log=tmp_path_factory.mktemp("lab") / "nspawn.log") as lab:
        yield lab


async def wait_for(reader: JournalReader, text: bytes, **kw) -> bytes:
    for _ in range(50):
        data = b"".join([c async for c in reader.lines("xcc.service", **kw)])
        if text in data:
            return data
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} never reached the journal")


async def test_journal_lines_since_and_tail(appliance):
    units = SystemdUnits(appliance.bus_address, appliance.root)
    try:
        await units.write_unit_file("xcc.service", CHATTY)
        started = time.time()
        await units.run_job("start", "xcc.service", timeout=30)
    finally:
        await units.close()
    reader = JournalReader(appliance.journal)
    data = await wait_for(reader, b"xcc says 5")
    for i in range(1, 6):
        assert f"xcc says {i}".encode() in data
    assert b"sh[" in data, "lines carry identifier and pid"
    last = b"".join([c async for c in reader.lines("xcc.service", lines=2)])
    assert last.count(b"\n") == 2
    later = b"".join([c async for c in reader.lines("xcc.service", since=started + 3600)])
    assert later == b""


async def test_journal_download_through_the_service(appliance, tmp_path):
    from satbridge.services.logs import LogsService
    from satbridge.system.compress import compressor
    from satbridge.system.files import ConfigDir
    from satbridge.system.logfiles import LogFiles

    logs = LogsService(
        LogFiles({}), JournalReader(appliance.journal), compressor, ("xcc.service",), None, None, ConfigDir(tmp_path)
    )  # type: ignore[arg-type]  # download needs neither
    data, sha = b"", ""
    async for chunk in logs.download("journal/xcc.service"):
        data += chunk.data
        sha = chunk.sha256 or sha
    assert b"xcc says 3" in data
    assert sha == hashlib.sha256(data).hexdigest()
