"""Journal logs from a REAL journal: the appliance's, booted in nspawn, read with journalctl -D."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

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


# XCC as a hostile or merely unusual writer would log, through journald's native protocol
# (systemd.journal-fields(7), sd_journal_sendv): a field given twice, values that are binary or hold
# escape sequences, one of 5000 bytes (journalctl writes null for it without --all), a multi-line one.
ODD_WRITER = r"""
import socket, struct
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect("/run/systemd/journal/socket")
def field(name, value):
    if b"\n" in value or any(b < 32 or b > 126 for b in value):
        return name + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
    return name + b"=" + value + b"\n"
def send(*values, extra=b""):
    s.send(b"".join(field(b"MESSAGE", v) for v in values) + b"SYSLOG_IDENTIFIER=xcc-odd\n" + extra)
send(b"first of two", b"second of two")
send(b"binary \xff\xfe and \x1b[31mred")
send(b"x" * 5000)
send(b"line one\nline two")
send(b"\x1b]0;retitled\x07 a title sequence")
send(b"plain", extra=field(b"CODE_FILE", b"\xff\x00"))
send(b"the last one")
"""
ODD_UNIT = """[Service]
Type=oneshot
ExecStart=/usr/bin/python3 /usr/local/bin/odd-writer
"""
CAPTURED = Path(__file__).resolve().parents[1] / "data" / "journald-252-odd-entries.json"


async def test_real_journald_entries_of_every_shape_are_read_whole(appliance):
    """Entries a real journald 252 wrote: a repeated MESSAGE (a JSON array of strings), binary
    values (arrays of numbers), a 5000-byte value (null without --all): each is rendered, escape
    sequences shown rather than sent, and none stops the lines after it."""
    (appliance.root / "usr/local/bin/odd-writer").write_text(ODD_WRITER)
    units = SystemdUnits(appliance.bus_address, appliance.root)
    try:
        await units.write_unit_file("xcc.service", ODD_UNIT)
        await units.run_job("start", "xcc.service", timeout=30)
    finally:
        await units.close()
    reader = JournalReader(appliance.journal)
    text = (await wait_for(reader, b"the last one")).decode()
    assert "first of two\n    second of two" in text
    assert "binary \ufffd\ufffd and \\x1b[31mred" in text
    assert "x" * 5000 in text
    assert "line one\n    line two" in text
    assert "\\x1b]0;retitled\\x07 a title sequence" in text
    assert "\x1b" not in text
    assert "\x07" not in text
    raw = await asyncio.to_thread(
        subprocess.run,
        ["journalctl", "-D", str(appliance.journal), "--all", "-o", "json", "SYSLOG_IDENTIFIER=xcc-odd"],
        capture_output=True,
        check=True,
    )
    raw = raw.stdout
    entries = [json.loads(line) for line in raw.splitlines()]
    assert [type(e["MESSAGE"]).__name__ for e in entries][:3] == ["list", "list", "str"]
    if os.environ.get("SATBRIDGE_CAPTURE_JOURNAL"):  # refresh the fixture the unit tests read
        CAPTURED.write_bytes(raw)
