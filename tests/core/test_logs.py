import pytest
from hypothesis import given
from hypothesis import strategies as st

from satbridge.core.logs import TerminalFilter, check_name, journal_line, redact, tar_header, tar_padding
from satbridge.errors import InvalidArgument


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/etc/passwd",
        "xcc/../../etc/passwd",
        "../x",
        "a\0b",
        "x" * 300,
        "satbridge//audit.log",
        "satbridge/audit.log/",
        "satbridge/./audit.log",
        "satbridge/",
    ],
)
def test_bad_names(name):
    with pytest.raises(InvalidArgument) as exc:
        check_name(name)
    assert exc.value.field == "name"


@given(
    st.lists(st.text(st.characters(blacklist_characters="/\0"), max_size=8), min_size=1, max_size=4),
    st.sampled_from(["", "."]),
    st.integers(0, 4),
)
def test_a_name_with_an_empty_or_dot_component_is_refused(parts, odd, where):
    parts.insert(min(where, len(parts)), odd)
    with pytest.raises(InvalidArgument) as exc:
        check_name("/".join(parts))
    assert exc.value.field == "name"


def test_journal_line():
    entry = {
        "__REALTIME_TIMESTAMP": "1795867200000000",
        "_HOSTNAME": "sat",
        "SYSLOG_IDENTIFIER": "xcc",
        "_PID": "42",
        "MESSAGE": "ready",
    }
    assert journal_line(entry) == "2026-11-28T12:00:00.000000Z sat xcc[42]: ready\n"
    assert journal_line({**entry, "MESSAGE": [104, 105, 255]}).endswith("xcc[42]: hi\ufffd\n")


def test_redact_hides_secret_looking_keys():
    data = {"server": {"listen": "[::]:1"}, "vendor": {"api_token": "t0p", "keys": ["a"]}, "code": "c"}
    assert redact(data) == {
        "server": {"listen": "[::]:1"},
        "vendor": {"api_token": "<redacted>", "keys": ["<redacted>"]},
        "code": "<redacted>",
    }


def test_tar_pieces_are_block_aligned():
    assert len(tar_header("a/b.log", 5, 0)) % 512 == 0
    assert len(tar_padding(5)) == 507
    assert tar_padding(1024) == b""


CONTROLS = set(range(0x20)) - {0x09, 0x0A} | {0x7F} | set(range(0x80, 0xA0))


def assert_terminal_safe(line: str) -> None:
    assert line.endswith("\n")
    assert not {ord(c) for c in line} & CONTROLS, repr(line)
    for continuation in line[:-1].split("\n")[1:]:
        assert continuation.startswith("    "), "continuation lines are indented, never a fake new entry"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
fields = st.sampled_from(["MESSAGE", "_PID", "SYSLOG_IDENTIFIER", "_COMM", "_HOSTNAME", "__REALTIME_TIMESTAMP"])


@given(st.dictionaries(fields, json_values) | json_values)
def test_any_json_is_a_terminal_safe_line(entry):
    assert_terminal_safe(journal_line(entry))


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=5))
def test_the_terminal_filter_is_safe_and_the_same_however_the_stream_is_cut(data, cuts):
    whole = TerminalFilter()
    expected = whole.feed(data) + whole.flush()
    pieces = TerminalFilter()
    got, start = b"", 0
    for cut in [*sorted(cuts), len(data)]:
        got += pieces.feed(data[start:cut])
        start = max(start, cut)
    got += pieces.flush()
    assert got == expected
    shown = expected.decode(errors="replace")
    assert not {ord(c) for c in shown} & (CONTROLS - set(range(0x80, 0xA0)))
    assert not any(0x80 <= ord(c) < 0xA0 for c in expected.decode(errors="ignore"))
