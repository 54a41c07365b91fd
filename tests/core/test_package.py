import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satbridge.core.package import (
    Manifest,
    check_member,
    check_name,
    check_path,
    check_version,
    is_version,
    parse_manifest,
    version_key,
)
from satbridge.errors import InvalidArgument

SHA = "a" * 64


def v2(**over: object) -> bytes:
    data: dict[str, object] = {
        "format": 2,
        "name": "xcc",
        "version": "1.0.0",
        "command": ["bin/xcc"],
        "files": {"bin/xcc": {"sha256": SHA, "mode": "0755"}, "lib/a.so": {"sha256": SHA, "mode": "0644"}},
        "dirs": {"bin": "0755", "lib": "0755"},
        "links": {"bin/alias": "xcc", "lib/b.so": "a.so", "top": "bin/xcc", "lib/up": "../bin/xcc"},
    }
    data.update(over)
    return json.dumps(data).encode()


def test_version_order():
    assert version_key("2.4.1") < version_key("2.10.0") < version_key("3.0.0-rc.1") < version_key("3.0.0")
    assert version_key("1.0.0-rc.2") < version_key("1.0.0-rc.10") < version_key("1.0.0-rc1")


@pytest.mark.parametrize(
    "good", ["2.4.1", "2.5.0-rc.1", "2.0.0-rc.tmp", "0.0.0-a-b", "1.0.0-0", "1.0.0-01a", "1.0.0--"]
)
def test_versions_of_the_grammar(good):
    assert check_version(good) == good


@pytest.mark.parametrize(
    "bad",
    ["", " 1", "1 ", "v1", "1..2", "1.", ".1", "01", "1.2.3.4.5", "1-", "1-a..b", "1-a.", "1+build", "١", "１",
     "²", "1~rc1", "1-rc/x", "1\n", "1\x00", "-1", "1" * 10, "1.0-" + "a" * 64, "..", "nan",
     # one version, one spelling (red team, issue 14): SemVer's three numbers, no leading zeros
     "1", "1.0", "1.2.3.4", "1.0.0.0", "1.0.0-01", "1.0.0-rc.01", "1.0.0-00", "01.0.0", "1.00.0"],
)  # fmt: skip
def test_versions_outside_the_grammar(bad):
    with pytest.raises(InvalidArgument):
        check_version(bad)


@settings(max_examples=300, deadline=None)
@given(
    a=st.from_regex(r"[0-9]{1,3}\.[0-9]{1,2}\.[0-9](-[0-9a-z]{1,3}(\.[0-9a-z]{1,3}){0,2})?", fullmatch=True),
    b=st.from_regex(r"[0-9]{1,3}\.[0-9]{1,2}\.[0-9](-[0-9a-z]{1,3}(\.[0-9a-z]{1,3}){0,2})?", fullmatch=True),
)
def test_versions_that_sort_equal_are_spelled_alike(a, b):
    """Each version has one spelling, so one release directory: equal keys, equal strings."""
    if is_version(a) and is_version(b):
        assert (version_key(a) == version_key(b)) == (a == b)


@pytest.mark.parametrize("arg", ["a\nExecStartPre=+/bin/sh", "\r", "\t", "\x7f", "\x85", "\x1b[2J", "\ud800"])
def test_command_arguments_hold_no_control_characters(arg):
    with pytest.raises(InvalidArgument) as refused:
        parse_manifest(v2(command=["bin/xcc", "--x", arg]))
    assert refused.value.field == "manifest.command[2]"


@pytest.mark.parametrize("mode", ["0777", "0775", "0757", "0666", "0646", "0620"])
@pytest.mark.parametrize("where", ["files", "dirs"])
def test_group_or_world_writable_modes_are_refused(mode, where):
    """XCC runs as root from its release: no member may be writable by anyone else."""
    over = (
        {"files": {"bin/xcc": {"sha256": SHA, "mode": mode}, "lib/a.so": {"sha256": SHA, "mode": "0644"}}}
        if where == "files"
        else {"dirs": {"bin": mode if int(mode, 8) & 0o700 == 0o700 else "0777", "lib": "0755"}}
    )
    with pytest.raises(InvalidArgument, match="writable"):
        parse_manifest(v2(**over))


@pytest.mark.parametrize("bad", ["", "XCC", "x_c", "-x", "x-", "x--y", "1x", "xcc ", "ｘcc", "x" * 33, "x.y"])
def test_names_outside_the_grammar(bad):
    with pytest.raises(InvalidArgument):
        check_name(bad)


@pytest.mark.parametrize(
    "bad", ["", "/a", "a/", "a//b", "./a", "a/.", "a/../b", "..", "a\\b", "é", "a\x00", "a\n", " a", "a ", "x" * 256]
)
def test_paths_outside_the_grammar(bad):
    with pytest.raises(InvalidArgument):
        check_path(bad, field="f")


def test_manifest_round_trip():
    m = parse_manifest(v2())
    assert parse_manifest(m.to_bytes()) == m
    assert m.links["lib/up"] == "../bin/xcc"
    assert m.modes == {"bin/xcc": 0o755, "lib/a.so": 0o644}
    draft = Manifest("xcc", "1.2.3", ("bin/xcc", "--port", "1"), {"bin/xcc": SHA})
    assert parse_manifest(draft.to_bytes()).dirs == {"bin": 0o755}, "a draft's directories are listed"


def test_format_1_lists_files_only_and_implies_their_directories():
    m = parse_manifest(
        json.dumps(
            {"format": 1, "name": "xcc", "version": "1.0.0", "command": ["bin/xcc"], "files": {"bin/xcc": SHA}}
        ).encode()
    )
    assert (m.format, m.links, m.modes) == (1, {}, {})
    assert m.all_dirs() == {"bin": 0o755}
    with pytest.raises(InvalidArgument):
        parse_manifest(
            json.dumps(
                {"format": 1, "name": "xcc", "version": "1.0.0", "command": ["a"], "files": {"a": SHA}, "links": {}}
            ).encode()
        )


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"format": True}, "manifest.format"),
        ({"format": 3}, "manifest.format"),
        ({"name": "XCC!"}, "manifest.name"),
        ({"name": 1}, "manifest.name"),
        ({"version": "one"}, "manifest.version"),
        ({"version": 1}, "manifest.version"),
        ({"command": []}, "manifest.command"),
        ({"command": "bin/xcc"}, "manifest.command"),
        ({"command": ["lib"]}, "manifest.command[0]"),
        ({"command": ["../bin/xcc"]}, "manifest.command[0]"),
        ({"command": ["bin/alias"]}, "manifest.command[0]"),
        ({"files": {"bin/xcc": SHA}}, "manifest.files[bin/xcc]"),
        ({"files": {"bin/xcc": {"sha256": SHA, "mode": "4755"}}}, "manifest.files[bin/xcc]"),
        ({"files": {"bin/xcc": {"sha256": SHA, "mode": 493}}}, "manifest.files[bin/xcc]"),
        ({"files": {"bin/xcc": {"sha256": SHA, "mode": "0755", "x": 1}}}, "manifest.files[bin/xcc]"),
        ({"files": {"bin/../x": {"sha256": SHA, "mode": "0755"}}}, "manifest.files[bin/../x]"),
        ({"files": []}, "manifest.files"),
        ({"dirs": {"bin": "0755", "lib": "0055"}}, "manifest.dirs[lib]"),
        ({"dirs": {"bin": "0755"}}, "manifest.dirs"),
        ({"links": {"a": "."}}, "manifest.links[a]"),
        ({"links": {"a": ".."}}, "manifest.links[a]"),
        ({"links": {"a": "bin"}}, "manifest.links[a]"),
        ({"links": {"a": "/bin/sh"}}, "manifest.links[a]"),
        ({"links": {"a": "../a"}}, "manifest.links[a]"),
        ({"links": {"lib/x": "../../bin/xcc"}}, "manifest.links[lib/x]"),
        ({"links": {"a": "bin/./xcc"}}, "manifest.links[a]"),
        ({"links": {"a": "lib/../bin/xcc"}}, "manifest.links[a]"),
        ({"links": {"a": "b", "b": "bin/xcc"}}, "manifest.links[a]"),
        ({"links": {"bin/xcc/x": "../xcc"}}, "manifest.dirs"),
        ({"links": {"bin": "lib/a.so"}}, "manifest"),
        ({"health": {"kind": "udp", "port": 1}}, "manifest.health"),
        ({"health": {"kind": "tcp", "port": True}}, "manifest.health.port"),
        ({"health": {"kind": "http", "port": 80, "path": "x"}}, "manifest.health.path"),
        ({"extra": 1}, "manifest"),
    ],
)
def test_bad_manifests_name_the_field(over, field):
    with pytest.raises(InvalidArgument) as exc:
        parse_manifest(v2(**over))
    assert exc.value.field == field


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"[]",
        b"null",
        b"\xff\xfe",
        b"[" * 100_000,
        b'{"a": 1, "a": 2}',
        b" " * ((1 << 20) + 1),
        b'{"format": 1e999}',
    ],
)
def test_unparseable_manifests(raw):
    with pytest.raises(InvalidArgument):
        parse_manifest(raw)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=512))
def test_any_bytes_parse_or_are_refused(raw):
    with contextlib.suppress(InvalidArgument):
        parse_manifest(raw)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(["format", "name", "version", "command", "files", "dirs", "links", "health"]), value=_json)
def test_any_json_in_any_field_is_refused_or_accepted_never_crashes(key, value):
    try:
        m = parse_manifest(v2(**{key: value}))
    except InvalidArgument:
        return
    assert parse_manifest(m.to_bytes()) == m


M = parse_manifest(v2())


@pytest.mark.parametrize(
    ("name", "kind", "link"),
    [
        ("/etc/passwd", "file", ""),
        ("payload/../../etc/passwd", "file", ""),
        ("../x", "file", ""),
        ("payload/bin/alias", "symlink", "/etc/passwd"),
        ("payload/bin/alias", "symlink", "../../outside"),
        ("payload/bin/alias", "symlink", "."),
        ("payload/bin/alias", "file", ""),
        ("payload/bin", "file", ""),
        ("payload/bin/xcc", "dir", ""),
        ("payload/bin/xcc", "symlink", "x"),
        ("payload/a", "symlink", "."),
        ("payload/e", "dir", ""),
        ("payload/./bin/xcc", "file", ""),
        ("payload//bin/xcc", "file", ""),
        ("payload/hard", "hardlink", "payload/bin/xcc"),
        ("payload/bin/xcc", "other", ""),
        ("elsewhere/file", "file", ""),
        ("manifest.json", "file", ""),
        ("payload", "symlink", "."),
    ],
)
def test_unlisted_or_escaping_members_are_refused(name, kind, link):
    with pytest.raises(InvalidArgument):
        check_member(M, name, kind, link)


def test_listed_members_are_placed():
    assert check_member(M, "payload/bin/xcc", "file", "").path == "bin/xcc"
    assert check_member(M, "payload/bin/alias", "symlink", "xcc").target == "xcc"
    assert check_member(M, "payload/bin", "dir", "").kind == "dir"
    assert check_member(M, "payload", "dir", "").path == ""
