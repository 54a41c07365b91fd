import pytest

from satbridge.core.package import Manifest, check_member, parse_manifest, version_key
from satbridge.errors import InvalidArgument

SHA = "a" * 64


def test_version_order():
    assert version_key("2.4.1") < version_key("2.10") < version_key("3.0-rc1") < version_key("3.0")
    assert version_key("3") == version_key("3.0.0.0")


def test_manifest_round_trip():
    m = Manifest("xcc", "1.2.3", ("bin/xcc", "--port", "1"), {"bin/xcc": SHA})
    assert parse_manifest(m.to_bytes()) == m


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"{", "manifest"),
        (b'{"format": 2}', "manifest.format"),
        (
            b'{"format": 1, "name": "XCC!", "version": "1", "command": ["a"], "files": {"a": "' + SHA.encode() + b'"}}',
            "manifest.name",
        ),
        (
            b'{"format": 1, "name": "xcc", "version": "one", "command": ["a"], "files": {"a": "'
            + SHA.encode()
            + b'"}}',
            "manifest.version",
        ),
        (
            b'{"format": 1, "name": "xcc", "version": "1", "command": [], "files": {"a": "' + SHA.encode() + b'"}}',
            "manifest.command",
        ),
        (
            b'{"format": 1, "name": "xcc", "version": "1", "command": ["b"], "files": {"a": "' + SHA.encode() + b'"}}',
            "manifest.command[0]",
        ),
        (
            b'{"format": 1, "name": "xcc", "version": "1", "command": ["../a"], "files": {"a": "'
            + SHA.encode()
            + b'"}}',
            "manifest.command[0]",
        ),
        (b'{"format": 1, "name": "xcc", "version": "1", "command": ["a"], "files": {"a": "xyz"}}', "manifest.files[a]"),
    ],
)
def test_bad_manifests_name_the_field(data, field):
    with pytest.raises(InvalidArgument) as exc:
        parse_manifest(data)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("name", "kind", "link"),
    [
        ("/etc/passwd", "file", ""),
        ("payload/../../etc/passwd", "file", ""),
        ("../x", "file", ""),
        ("payload/link", "symlink", "/etc/passwd"),
        ("payload/link", "symlink", "../../outside"),
        ("payload/hard", "hardlink", "payload/bin/xcc"),
        ("payload/dev", "other", ""),
        ("elsewhere/file", "file", ""),
    ],
)
def test_escaping_members_are_refused(name, kind, link):
    with pytest.raises(InvalidArgument):
        check_member(name, kind, 0, link)


def test_inner_members_are_placed():
    assert check_member("payload/bin/xcc", "file", 1, "") == "bin/xcc"
    assert check_member("payload/bin/link", "symlink", 0, "xcc") == "bin/link"
    assert check_member("payload", "dir", 0, "") is None
