import pytest

from satbridge.core.logs import check_name, journal_line, redact, tar_header, tar_padding
from satbridge.errors import InvalidArgument


@pytest.mark.parametrize("name", ["", "/etc/passwd", "xcc/../../etc/passwd", "../x", "a\0b", "x" * 300])
def test_bad_names(name):
    with pytest.raises(InvalidArgument) as exc:
        check_name(name)
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
