"""The extractor against generated trees (hypothesis): honest trees come out exactly as their
manifest lists them; hostile tar layouts, even with a manifest that lists them unchecked, never
create anything outside the staging directory."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tarfile
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satbridge.client.package import build, manifest_for
from satbridge.core.package import Limits, Manifest, parse_manifest
from satbridge.errors import InvalidArgument
from satbridge.system.package import extract, read_head
from satbridge.tls.signing import new_signing_key

EXAMPLES = int(os.environ.get("SATBRIDGE_PROPERTY_EXAMPLES", "40"))
KEY = new_signing_key()[0]
ODD = ["a", "b", "e", "-x", "...", "a b", "x" * 255, "payload", "manifest.json", "%n", "!", "~", "A", "tmp.tmp"]


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, str]]:
    """Every path under `root` except under `skip`: (type bits, link target or size)."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == skip or skip in here.parents:
            continue
        for name in dirnames + filenames:
            if here / name == skip:
                continue
            st_ = (here / name).lstat()
            detail = os.readlink(here / name) if stat.S_ISLNK(st_.st_mode) else str(st_.st_size)
            detail = "" if stat.S_ISDIR(st_.st_mode) else detail  # a directory's size is its entries
            seen[str((here / name).relative_to(root))] = (stat.S_IFMT(st_.st_mode), detail)
    return seen


def listing(dest: Path) -> dict[str, object]:
    """What extract() created: path -> ("dir", mode) | ("file", mode, sha256) | ("link", target)."""
    found: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st_ = path.lstat()
            inner = path.relative_to(dest).as_posix()
            if stat.S_ISLNK(st_.st_mode):
                found[inner] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st_.st_mode):
                found[inner] = ("dir", stat.S_IMODE(st_.st_mode))
            else:
                found[inner] = ("file", stat.S_IMODE(st_.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def expected(m: Manifest) -> dict[str, object]:
    want: dict[str, object] = {p: ("dir", mode) for p, mode in m.all_dirs().items()}
    want.update({p: ("file", m.modes[p], d) for p, d in m.files.items()})
    want.update({p: ("link", t) for p, t in m.links.items()})
    return want


# -- honest trees ---------------------------------------------------------------------------

_names = st.sampled_from(ODD) | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)


@st.composite
def trees(draw: st.DrawFn) -> list[tuple[str, str, bytes]]:
    """(path, kind, data) entries of a tree a vendor could pack: dirs, files, links to files."""
    entries: list[tuple[str, str, bytes]] = [("bin", "dir", b""), ("bin/xcc", "file", b"#!/bin/sh\n")]
    dirs, files = ["", "bin"], ["bin/xcc"]
    for _ in range(draw(st.integers(0, 12))):
        name = draw(_names)
        if "/" in name or "\\" in name or name in (".", "..") or name != name.strip():
            continue
        parent = draw(st.sampled_from(dirs))
        path = f"{parent}/{name}" if parent else name
        if any(path == e[0] for e in entries) or path.count("/") > 8:
            continue
        kind = draw(st.sampled_from(["dir", "file", "file", "link"]))
        if kind == "link":
            target = draw(st.sampled_from(files))
            depth = path.count("/")
            data = ("../" * depth + target).encode()
        else:
            data = draw(st.binary(max_size=64)) if kind == "file" else b""
        entries.append((path, kind, data))
        (dirs if kind == "dir" else files if kind == "file" else []).append(path)
    return entries


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(tree=trees(), executable=st.booleans())
def test_an_honest_tree_comes_out_exactly_as_listed(tree, executable):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "src"
        (source / "payload").mkdir(parents=True)
        (source / "package.json").write_text('{"name": "xcc", "version": "1.0.0", "command": ["bin/xcc"]}')
        for path, kind, data in tree:
            target = source / "payload" / path
            if kind == "dir":
                target.mkdir()
            elif kind == "file":
                target.write_bytes(data)
                target.chmod(0o755 if executable else 0o644)
            else:
                target.symlink_to(data.decode())
        built = build(source, KEY, root / "pkg.tar.gz")
        assert built == manifest_for(source)
        m = parse_manifest(read_head(root / "pkg.tar.gz")[0])
        dest = root / "xcc/staging/1.0.0"
        dest.parent.mkdir(parents=True)
        before = snapshot(root, dest)
        extract(root / "pkg.tar.gz", dest, m, Limits())
        assert snapshot(root, dest) == before
        assert listing(dest) == expected(m)


# -- hostile layouts ------------------------------------------------------------------------

_part = st.sampled_from(["a", "b", "e", "..", ".", "", "x" * 300, "1.0.0", "staging", "payload"])
_path = st.lists(_part, min_size=1, max_size=6).map("/".join)
_kind = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE])


def hostile_package(out: Path, members: list[tuple[str, bytes, str]]) -> tuple[Path, Manifest]:
    """A tar of `members` (name below payload/, type, link target), and a manifest that lists
    them all as they are, built directly (never through parse_manifest): only the extractor
    stands between them and the disk."""
    files, dirs, links = {}, {}, {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for head in ("manifest.json", "manifest.sig"):
            tar.addfile(tarfile.TarInfo(head), io.BytesIO(b""))
        for inner, kind, link in members:
            info = tarfile.TarInfo(f"payload/{inner}")
            info.type = kind
            info.linkname = link
            data = b"x" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
            if kind == tarfile.REGTYPE:
                files[inner] = hashlib.sha256(data).hexdigest()
            elif kind == tarfile.DIRTYPE:
                dirs[inner.rstrip("/")] = 0o755
            elif kind == tarfile.SYMTYPE:
                links[inner] = link
    path = out / "hostile.tar"
    path.write_bytes(buffer.getvalue())
    return path, Manifest("xcc", "1.0.0", ("a",), files, None, dict.fromkeys(files, 0o644), dirs, links)


@settings(max_examples=EXAMPLES * 3, deadline=None, suppress_health_check=list(HealthCheck))
@given(members=st.lists(st.tuples(_path, _kind, _path), max_size=8))
def test_no_hostile_layout_writes_outside_staging(members):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "etc/satbridge").mkdir(parents=True)
        (root / "etc/satbridge/satbridge.toml").write_text("")
        dest = root / "opt/xcc/staging/1.0.0"
        dest.parent.mkdir(parents=True)
        before = snapshot(root, dest)
        path, m = hostile_package(root, members)
        before = snapshot(root, dest)
        with contextlib.suppress(InvalidArgument):
            extract(path, dest, m, Limits())
        assert snapshot(root, dest) == before


def test_the_link_chain_of_issue_14_stays_inside():
    """payload/a -> ., payload/a/b -> .., payload/e -> b/<v>/b/<v>/b/../../.., dirs under e."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dest = root / "opt/xcc/staging/1.0.0"
        dest.parent.mkdir(parents=True)
        before = snapshot(root, dest)
        chain = [
            ("a", tarfile.SYMTYPE, "."),
            ("a/b", tarfile.SYMTYPE, ".."),
            ("e", tarfile.SYMTYPE, "b/1.0.0/b/1.0.0/b/../../.."),
            ("e/escaped", tarfile.DIRTYPE, ""),
            ("e/escaped/file", tarfile.REGTYPE, ""),
        ]
        path, m = hostile_package(root, chain)
        before = snapshot(root, dest)
        with contextlib.suppress(InvalidArgument):
            extract(path, dest, m, Limits())
        assert snapshot(root, dest) == before
        assert not any(p.name == "escaped" for p in root.rglob("*"))
