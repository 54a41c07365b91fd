"""Rendering journalctl's JSON (system/journal.py) on entries a real journald wrote."""

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from satbridge.core.logs import journal_line
from satbridge.system.journal import render_entry
from tests.core.test_logs import assert_terminal_safe

CAPTURED = Path(__file__).resolve().parents[1] / "data" / "journald-252-odd-entries.json"


def test_entries_from_a_real_journald_render_whole_and_terminal_safe():
    """Captured from journald 252 in the appliance lab (tests/system/test_journal_nspawn.py):
    MESSAGE as an array of strings, as byte arrays, 5000 bytes long, and a binary CODE_FILE."""
    lines = [render_entry(raw).decode() for raw in CAPTURED.read_bytes().splitlines()]
    for line in lines:
        assert_terminal_safe(line)
    text = "".join(lines)
    assert "first of two\n    second of two" in text
    assert "binary \ufffd\ufffd and \\x1b[31mred" in text
    assert "x" * 5000 in text
    assert "\\x1b]0;retitled\\x07 a title sequence" in text
    assert "the last one" in text


def test_a_value_journalctl_left_out_and_an_unreadable_entry_cost_nothing_else():
    entry = json.loads(CAPTURED.read_bytes().splitlines()[2])
    entry["MESSAGE"] = None  # what journalctl writes for a value over 4096 bytes without --all
    assert journal_line(entry).endswith("xcc-odd[{}]: \n".format(entry["_PID"]))
    assert render_entry(b'{"MESSAGE": "cut') == b"(an unreadable journal entry of 16 bytes)\n"
    assert render_entry(b"[" * 100000).startswith(b"(an unreadable journal entry")


@given(st.binary(max_size=300))
def test_any_bytes_from_journalctl_are_a_line(raw):
    assert_terminal_safe(render_entry(raw).decode())


async def test_a_program_that_fails_is_not_an_empty_success():
    """journalctl that cannot read the journal (or a --since it refuses) exits non-zero: the
    stream says so with its stderr, instead of ending as if there were no lines."""
    import pytest

    from satbridge.errors import Unavailable
    from satbridge.system.runner import stream

    got = bytearray()

    async def read() -> None:
        async for data in stream(["sh", "-c", "echo some; echo 'Failed to parse timestamp: @-3600' >&2; exit 1"]):
            got.extend(data)

    with pytest.raises(Unavailable, match="Failed to parse timestamp"):
        await read()
    assert got == b"some\n"
    assert b"".join([d async for d in stream(["sh", "-c", "echo fine"])]) == b"fine\n"
