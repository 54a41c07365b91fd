"""AuditTail (the audit feed's reader) against what a console process or an operator can leave in
the audit log: nested JSON, a FIFO, a line that never ends, bytes that are no UTF-8 (red team 22)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from satbridge.system.audit import AuditTail


def _line(event: str, **fields: object) -> bytes:
    return (json.dumps({"event": event, **fields}) + "\n").encode()


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def test_deeply_nested_json_line_is_skipped_not_raised(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    tail = AuditTail(log)
    _append(log, b"[" * 100_000 + b"\n" + _line("firewall-set", revision=3))
    assert tail.read_new() == [{"event": "firewall-set", "revision": 3}]


def test_fifo_in_place_of_the_log_does_not_block(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    tail = AuditTail(log)
    log.unlink()
    os.mkfifo(log)
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append(tail.read_new()), daemon=True)
    reader.start()
    reader.join(5)
    try:
        assert not reader.is_alive(), "read_new() blocked on a FIFO (the audit feed stalls, the bridge hangs at exit)"
        assert result == [[]]
    finally:
        if reader.is_alive():  # unblock it: a writer opens and closes the FIFO
            os.close(os.open(log, os.O_WRONLY | os.O_NONBLOCK))


def test_endless_line_keeps_memory_bounded_and_later_entries_arrive(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    tail = AuditTail(log)
    chunk = b"x" * (1 << 20)
    for _ in range(6):
        _append(log, chunk)
        while tail.changed():
            assert tail.read_new() == []
        assert len(tail._partial) <= AuditTail.MAX_LINE
    _append(log, b"\n" + _line("paired", peer_name="mgmt"))
    entries = []
    while tail.changed():
        entries += tail.read_new()
    assert entries == [{"event": "paired", "peer_name": "mgmt"}]


def test_line_written_in_two_writes_is_one_entry(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    tail = AuditTail(log)
    line = _line("network-changed", what="eth0")
    _append(log, line[:10])
    assert tail.read_new() == []
    _append(log, line[10:])
    assert tail.read_new() == [{"event": "network-changed", "what": "eth0"}]


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=300))
def test_garbage_between_entries_never_raises_nor_loses_them(garbage: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "audit.log"
        log.write_bytes(b"")
        tail = AuditTail(log)
        _append(log, _line("paired") + garbage.replace(b"\n", b" ") + b"\n" + _line("disconnected"))
        entries = [e for e in tail.read_new() if e.get("event") in ("paired", "disconnected")]
        tail.close()
        assert [e["event"] for e in entries] == ["paired", "disconnected"]


def test_rename_and_create_keeps_what_the_old_file_got_last(tmp_path: Path) -> None:
    """Red team 22: an entry appended just before the log was renamed away (logrotate's
    create mode) was lost: the tail went straight to the new file's start."""
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    tail = AuditTail(log)
    _append(log, _line("firewall-set", revision=1))
    assert tail.read_new() == [{"event": "firewall-set", "revision": 1}]
    _append(log, _line("firewall-set", revision=2))  # after the last read ...
    log.rename(tmp_path / "audit.log.1")  # ... then rotated
    _append(log, _line("firewall-set", revision=3))
    entries = []
    while tail.changed():
        entries += tail.read_new()
    assert [e["revision"] for e in entries] == [2, 3]


def test_truncated_log_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(_line("paired") * 5)
    tail = AuditTail(log)
    log.write_bytes(_line("disconnected"))
    assert tail.read_new() == [{"event": "disconnected"}]
