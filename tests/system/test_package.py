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

import pytest
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


# -- tar headers that would cost memory before any limit (red team, issue 14 finding 1) -----------

BOMB = 48 << 20  # bytes of one extended header: 48 MiB of zeros, 50 KB gzipped


def _header_bomb(out: Path, kind: bytes, where: str, compression: str) -> tuple[Path, Manifest]:
    """A package whose first member (`where` = head) or first payload member (payload) is an
    extended header (`kind`: PAX x/g, GNU long name L / link K) declaring BOMB bytes of zeros.
    Written by hand, streaming, since tarfile would not write such a header."""
    import gzip

    import zstandard

    xcc = b"#!/bin/sh\n"
    m = Manifest("xcc", "1.0.0", ("xcc",), {"xcc": hashlib.sha256(xcc).hexdigest()})
    raw = m.to_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (("manifest.json", raw), ("manifest.sig", b"s" * 64)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    head = buffer.getvalue()[: -tarfile.RECORDSIZE].rstrip(b"\0")
    head += b"\0" * (-len(head) % tarfile.BLOCKSIZE)
    bomb = tarfile.TarInfo("././@LongLink" if kind in (b"L", b"K") else "././@PaxHeader")
    bomb.type = kind
    bomb.size = BOMB
    path = out / f"bomb-{kind.decode()}-{where}.{compression}"
    with open(path, "wb") as raw_out:
        sink = (
            gzip.GzipFile(fileobj=raw_out, mode="wb", compresslevel=1)
            if compression == "gz"
            else zstandard.ZstdCompressor(level=1).stream_writer(raw_out)
            if compression == "zst"
            else raw_out
        )
        if where == "payload":
            sink.write(head)
        sink.write(bomb.tobuf(tarfile.USTAR_FORMAT))
        for _ in range(BOMB >> 20):
            sink.write(b"\0" * (1 << 20))
        if where == "head":
            sink.write(head)
        sink.write(b"\0" * tarfile.RECORDSIZE)
        sink.flush()
        if sink is not raw_out:
            sink.close()
    return path, m


@pytest.mark.parametrize(
    ("kind", "where", "compression"),
    [(b"x", "head", "gz"), (b"x", "head", "zst"), (b"g", "head", "tar"), (b"L", "head", "gz"),
     (b"K", "payload", "gz"), (b"x", "payload", "zst")],
)  # fmt: skip
def test_an_oversized_tar_header_is_refused_before_it_is_read(tmp_path, kind, where, compression):
    """tarfile reads an extended header whole inside tar.next(), before any size limit and (at
    the head) before the signature is checked: the header is refused from its 512-byte block,
    naming the limit, with memory flat and time short (the bridge's read_head and extract, and
    satctl's describe)."""
    import time
    import tracemalloc

    from satbridge.client.update import describe
    from satbridge.system.package import HEADER_LIMIT

    path, m = _header_bomb(tmp_path, kind, where, compression)
    calls = (
        [lambda: read_head(path), lambda: describe(path)]
        if where == "head"
        else [lambda: extract(path, tmp_path / "dest", m, Limits())]
    )
    for call in calls:
        tracemalloc.start()
        started = time.monotonic()
        try:
            with pytest.raises(InvalidArgument) as refused:
                call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert time.monotonic() - started < 10
        assert peak < 4 << 20, f"{peak} bytes allocated for a {path.stat().st_size}-byte package"
        assert str(HEADER_LIMIT) in str(refused.value)
        assert refused.value.field == "package"


def test_headers_that_move_member_boundaries_are_refused(tmp_path):
    """A PAX `size` record, a sparse member, data behind a directory header: what would make the
    header guard and tarfile disagree on where the next header starts is refused outright."""
    xcc = b"#!/bin/sh\n"
    m = Manifest("xcc", "1.0.0", ("xcc",), {"xcc": hashlib.sha256(xcc).hexdigest()})
    cases = {
        "pax-size": tarfile.TarInfo("payload/xcc"),
        "sparse": tarfile.TarInfo("payload/xcc"),
        "dir-data": tarfile.TarInfo("payload"),
    }
    cases["pax-size"].pax_headers = {"size": str(len(xcc))}
    cases["sparse"].type = tarfile.GNUTYPE_SPARSE
    cases["dir-data"].type = tarfile.DIRTYPE
    for case, info in cases.items():
        raw = m.to_bytes()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in (("manifest.json", raw), ("manifest.sig", b"s" * 64)):
                head = tarfile.TarInfo(name)
                head.size = len(data)
                tar.addfile(head, io.BytesIO(data))
            info.size = len(xcc)
            block = info.tobuf(tarfile.PAX_FORMAT)
        data = buffer.getvalue()[: -tarfile.RECORDSIZE].rstrip(b"\0")
        data += b"\0" * (-len(data) % tarfile.BLOCKSIZE)
        path = tmp_path / f"{case}.tar"
        path.write_bytes(data + block + xcc.ljust(tarfile.BLOCKSIZE, b"\0") + b"\0" * tarfile.RECORDSIZE)
        with pytest.raises(InvalidArgument, match=r"PAX 'size'|sparse|carries"):
            extract(path, tmp_path / case, m, Limits())


def test_a_directory_member_twice_is_refused(tmp_path):
    """README: "a member twice" is refused; directory members too (red team, issue 14)."""
    xcc = b"#!/bin/sh\n"
    m = Manifest("xcc", "1.0.0", ("bin/xcc",), {"bin/xcc": hashlib.sha256(xcc).hexdigest()}, dirs={"bin": 0o755})
    raw = m.to_bytes()
    for twice in (["payload/bin", "payload/bin"], ["payload", "payload"]):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in (("manifest.json", raw), ("manifest.sig", b"s" * 64)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            for name in ["payload", "payload/bin", *twice][1 if twice[0] == "payload" else 0 :]:
                info = tarfile.TarInfo(name)
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            info = tarfile.TarInfo("payload/bin/xcc")
            info.size = len(xcc)
            tar.addfile(info, io.BytesIO(xcc))
        path = tmp_path / "twice.tar"
        path.write_bytes(buffer.getvalue())
        with pytest.raises(InvalidArgument, match="twice"):
            extract(path, tmp_path / f"dest-{len(twice[0])}", parse_manifest(raw), Limits())
