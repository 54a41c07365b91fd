"""Install over real files and a fake systemd on a private bus: bad packages, rollback, commit."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import tarfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from satbridge.core.package import Limits
from satbridge.errors import Aborted, FailedPrecondition, InvalidArgument, PermissionDenied, SatbridgeError
from satbridge.services.install import InstallService
from satbridge.services.state import StateService
from satbridge.services.update import UpdateService
from satbridge.system.files import DirStore, FileLocks
from satbridge.system.package import PackageIO
from satbridge.system.probe import Prober
from satbridge.system.releases import Releases
from satbridge.system.staging import Staging
from satbridge.system.systemd import SystemdUnits
from tests.fakes import CountingEntropy, ListAudit
from tests.lab import packages


class Lab:
    def __init__(self, root: Path, bus: str) -> None:
        self.root = root
        store = DirStore(root / "state")
        self.staging = Staging(root / "state/uploads")
        self.releases = Releases(root / "opt/xcc")
        self.units = SystemdUnits(bus, root)
        self.audit = ListAudit()
        self.update = UpdateService(self.staging, self.releases, PackageIO())
        self.install_service = InstallService(
            self.staging,
            self.releases,
            PackageIO(),
            self.units,
            Prober(),
            store,
            FileLocks(root / "state"),
            self.audit,
            StateService(store, CountingEntropy()),
            time.time,
            root / "etc/keys",
            health_gate=0.5,
            limits=Limits(max_file=1 << 20, max_total=2 << 20),
        )
        self.pkgs = root / "pkgs"
        self.key = packages.trusted_key(root / "etc", self.pkgs)

    async def stage(self, path: Path) -> str:
        data = path.read_bytes()
        m = packages.manifest_of(path) if path.stat().st_size < 50 << 20 else None
        name, version = (m.name, m.version) if m else ("xcc", "0.0.1")
        begun = await self.update.begin(name, version, len(data), hashlib.sha256(data).hexdigest())

        async def chunks():
            for i in range(0, len(data), 1 << 16):
                yield begun.upload_id, i, data[i : i + 1 << 16]

        done = await self.update.upload(chunks())
        assert done.complete
        return begun.upload_id

    async def install(self, path: Path, **kw) -> list:
        upload_id = await self.stage(path)
        return [event async for event in self.install_service.install(upload_id, **kw)]


@pytest.fixture
async def lab(tmp_path, fake_systemd):
    lab = Lab(tmp_path, fake_systemd.address)
    try:
        yield lab
    finally:
        await lab.units.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_first_install_writes_the_unit_and_commits(lab, probe_port, fake_systemd):
    events = await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=probe_port))
    assert [e.phase for e in events] == [
        "VERIFYING",
        "EXTRACTING",
        "SWITCHING",
        "RESTARTING",
        "HEALTH_CHECK",
        "COMMITTED",
    ]
    assert lab.releases.current() == "1.0.0"
    unit = (lab.root / "etc/systemd/system/xcc.service").read_text()
    assert f'ExecStart="/opt/xcc/current/bin/xcc" "--port" "{probe_port}"' in unit
    assert ("EnableUnitFiles", "xcc.service") in fake_systemd.behaviour.calls
    assert ("RestartUnit", "xcc.service") in fake_systemd.behaviour.calls
    assert (lab.root / "opt/xcc/releases/1.0.0/bin/xcc").stat().st_mode & 0o111
    assert "installed" in lab.audit.names()


async def test_update_keeps_current_and_previous_only(lab, probe_port):
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        events = await lab.install(packages.good(lab.pkgs, lab.key, version, port=probe_port))
        assert events[-1].phase == "COMMITTED"
    assert (lab.releases.current(), lab.releases.previous()) == ("1.2.0", "1.1.0")
    assert sorted(p.name for p in (lab.root / "opt/xcc/releases").iterdir()) == ["1.1.0", "1.2.0"]
    assert lab.update.versions().staged == (), "installed uploads are cleaned up"


async def test_failing_probe_rolls_back_and_says_why(lab, probe_port):
    await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=probe_port))
    events = await lab.install(packages.good(lab.pkgs, lab.key, "2.0.0", port=closed_port(), variant="bad-health"))
    assert events[-1].phase == "ROLLED_BACK"
    assert "health probe" in events[-1].reason
    assert lab.releases.current() == "1.0.0"


async def test_failing_restart_rolls_back(lab, probe_port, fake_systemd):
    await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=probe_port))
    fake_systemd.behaviour.fail_jobs = True
    events = await lab.install(packages.good(lab.pkgs, lab.key, "2.0.0", port=probe_port, variant="crash"))
    assert events[-1].phase == "ROLLED_BACK"
    assert "job failed" in events[-1].reason
    assert lab.releases.current() == "1.0.0"


async def test_a_rollback_puts_back_the_unit_the_old_release_ran_with(lab, probe_port):
    """Red team, issue 14: the rollback moved `current` back but kept the failed release's
    xcc.service, so 1.0.0 ran with 2.0.0's command."""
    unit_file = lab.root / "etc/systemd/system/xcc.service"
    await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=probe_port))
    before = unit_file.read_text()
    events = await lab.install(packages.good(lab.pkgs, lab.key, "2.0.0", port=closed_port(), variant="bad-health"))
    assert events[-1].phase == "ROLLED_BACK"
    assert unit_file.read_text() == before
    assert "--fail-health" not in unit_file.read_text()


async def test_a_unit_systemd_does_not_load_fails_the_health_gate(lab, probe_port, fake_systemd):
    """A unit file systemd refuses (LoadState=bad-setting) would not start after a crash or a
    reboot: the install rolls back, and the old unit file is back."""
    unit_file = lab.root / "etc/systemd/system/xcc.service"
    await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=probe_port))
    before = unit_file.read_text()
    unit, _ = fake_systemd.units["xcc.service"]
    unit.load_state = "bad-setting"
    stage = lab.install_service._health_gate

    async def gate(manifest, seconds):
        try:
            await stage(manifest, seconds)
        finally:
            unit.load_state = "loaded"  # the restored unit loads again

    lab.install_service._health_gate = gate
    events = await lab.install(packages.good(lab.pkgs, lab.key, "2.0.0", port=probe_port, variant="bad-health"))
    assert events[-1].phase == "ROLLED_BACK"
    assert "LoadState=bad-setting" in events[-1].reason
    assert unit_file.read_text() == before


async def test_a_failed_first_install_leaves_no_unit(lab, fake_systemd):
    events = await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=closed_port()))
    assert events[-1].phase == "ROLLED_BACK"
    assert not (lab.root / "etc/systemd/system/xcc.service").exists()
    assert ("DisableUnitFiles", "xcc.service") in fake_systemd.behaviour.calls


async def test_a_failed_first_install_leaves_no_unit_even_when_its_stop_fails(lab, fake_systemd):
    """Found running the README in the sandbox: the rollback removed the unit file only after a
    stop that worked, so a stop that failed (systemd unreachable, a failed job) left the failed
    release's xcc.service, which systemd would start at the next boot."""
    fake_systemd.behaviour.fail_jobs = True  # the start fails, and so does the rollback's stop
    events = await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=closed_port()))
    assert events[-1].phase == "ROLLED_BACK"
    assert not (lab.root / "etc/systemd/system/xcc.service").exists()
    assert ("DisableUnitFiles", "xcc.service") in fake_systemd.behaviour.calls


async def test_a_failed_first_install_leaves_nothing_running(lab, fake_systemd):
    events = await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=closed_port()))
    assert events[-1].phase == "ROLLED_BACK"
    assert lab.releases.current() == ""
    assert fake_systemd.behaviour.calls[-1][0] in ("StopUnit", "LoadUnit")


def bad_packages(lab: Lab, probe_port: int) -> dict[str, tuple[Path, type[SatbridgeError]]]:
    key = lab.key.read_bytes()
    good = packages.good(lab.pkgs, lab.key, "3.0.0", port=probe_port)
    m = packages.manifest_of(good)
    xcc = (Path(packages.demo.__file__).parent / "payload/bin/xcc").read_bytes()
    ok = packages.member("payload/bin/xcc", xcc)
    version = packages.member("payload/VERSION", b"3.0.0\n")
    raw = packages.raw_package
    out = lab.pkgs
    bomb_manifest = replace(m, files={**m.files, "zeros": hashlib.sha256(b"\0" * (3 << 20)).hexdigest()})
    truncated = out / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return {
        "bad signature": (raw(out, key, m, [ok, version], signature=b"\1" * 64, name="sig.tgz"), PermissionDenied),
        "unknown key": (raw(out, packages.other_key(), m, [ok, version], name="key.tgz"), PermissionDenied),
        "hash mismatch": (
            raw(out, key, m, [packages.member("payload/bin/xcc", xcc + b"#"), version], name="hash.tgz"),
            InvalidArgument,
        ),
        "truncated": (truncated, InvalidArgument),
        "tar-slip ..": (
            raw(out, key, m, [ok, version, packages.member("payload/../../evil", b"x")], name="slip.tgz"),
            InvalidArgument,
        ),
        "absolute path": (
            raw(out, key, m, [ok, version, packages.member("/tmp/evil", b"x")], name="abs.tgz"),
            InvalidArgument,
        ),
        "symlink escaping": (
            raw(
                out,
                key,
                m,
                [ok, version, packages.member("payload/l", kind=tarfile.SYMTYPE, link="../../../etc/passwd")],
                name="sym.tgz",
            ),
            InvalidArgument,
        ),
        "hardlink escaping": (
            raw(
                out,
                key,
                m,
                [ok, version, packages.member("payload/h", kind=tarfile.LNKTYPE, link="/etc/passwd")],
                name="hard.tgz",
            ),
            InvalidArgument,
        ),
        "device node": (
            raw(out, key, m, [ok, version, packages.member("payload/dev", kind=tarfile.CHRTYPE)], name="dev.tgz"),
            InvalidArgument,
        ),
        "oversize": (
            raw(
                out,
                key,
                replace(m, files={**m.files, "big": hashlib.sha256(b"\0" * (2 << 20)).hexdigest()}),
                [ok, version, packages.member("payload/big", b"\0" * (2 << 20))],
                name="big.tgz",
            ),
            InvalidArgument,
        ),
        "decompression bomb": (
            raw(
                out,
                key,
                bomb_manifest,
                [ok, version, packages.member("payload/zeros", b"\0" * (3 << 20))],
                name="bomb.tgz",
            ),
            InvalidArgument,
        ),
        "wrong package name": (
            raw(out, key, replace(m, name="other"), [ok, version], name="name.tgz"),
            InvalidArgument,
        ),
        "downgrade": (packages.good(lab.pkgs, lab.key, "0.9.0", port=probe_port), FailedPrecondition),
        "links built on links (issue 14)": (
            raw(out, key, m, [ok, version, *link_chain("3.0.0")], name="chain.tgz"),
            InvalidArgument,
        ),
        "unlisted inner link": (
            raw(
                out,
                key,
                m,
                [ok, version, packages.member("payload/l", kind=tarfile.SYMTYPE, link="bin/xcc")],
                name="l.tgz",
            ),
            InvalidArgument,
        ),
        "unlisted directory": (
            raw(out, key, m, [ok, version, packages.member("payload/extra", kind=tarfile.DIRTYPE)], name="d.tgz"),
            InvalidArgument,
        ),
        "a member twice": (raw(out, key, m, [ok, version, ok], name="twice.tgz"), InvalidArgument),
        "a file where a directory is listed": (
            raw(out, key, m, [packages.member("payload/bin", b"x"), ok, version], name="fdir.tgz"),
            InvalidArgument,
        ),
        "a listed file missing": (raw(out, key, m, [ok], name="missing.tgz"), InvalidArgument),
        "fifo": (
            raw(out, key, m, [ok, version, packages.member("payload/f", kind=tarfile.FIFOTYPE)], name="fifo.tgz"),
            InvalidArgument,
        ),
        "a name past NAME_MAX": (
            raw(out, key, m, [ok, version, packages.member("payload/" + "x" * 300, b"x")], name="long.tgz"),
            InvalidArgument,
        ),
        "manifest.json again in the body": (
            raw(out, key, m, [ok, version, packages.member("manifest.json", b"{}")], name="again.tgz"),
            InvalidArgument,
        ),
        "signed link to a directory": (
            raw(out, key, replace(m, links={"l": "bin"}), [ok, version], name="ldir.tgz"),
            InvalidArgument,
        ),
        "signed link to a link": (
            raw(out, key, replace(m, links={"l1": "bin/xcc", "l2": "l1"}), [ok, version], name="ll.tgz"),
            InvalidArgument,
        ),
        "signed link climbing out": (
            raw(out, key, replace(m, links={"l": "../x"}), [ok, version], name="lout.tgz"),
            InvalidArgument,
        ),
        "version outside the grammar": (
            raw(out, key, replace(m, version="3.0.0~rc1"), [ok, version], name="ver.tgz"),
            InvalidArgument,
        ),
    }


def link_chain(v: str) -> list[tuple[tarfile.TarInfo, bytes]]:
    """The layout of issue 14: each link looks inside by its own path; together they lead out."""
    sym, directory = tarfile.SYMTYPE, tarfile.DIRTYPE
    return [
        packages.member("payload/a", kind=sym, link="."),
        packages.member("payload/a/b", kind=sym, link=".."),
        packages.member("payload/e", kind=sym, link=f"b/{v}.tmp/b/{v}.tmp/b/../../.."),
        packages.member("payload/e/escaped", kind=directory),
        packages.member("payload/e/escaped/etc", kind=directory),
    ]


async def test_links_built_on_links_create_nothing_outside(lab, probe_port):
    await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=probe_port))
    good = packages.good(lab.pkgs, lab.key, "3.0.0", port=probe_port)
    m = packages.manifest_of(good)
    xcc = (Path(packages.demo.__file__).parent / "payload/bin/xcc").read_bytes()
    members = [packages.member("payload/bin/xcc", xcc), packages.member("payload/VERSION", b"3.0.0\n")]
    path = packages.raw_package(lab.pkgs, lab.key.read_bytes(), m, [*members, *link_chain("3.0.0")], name="c.tgz")
    with pytest.raises(InvalidArgument):
        await lab.install(path)
    assert not [p for p in lab.root.parent.rglob("escaped")], "nothing was created outside staging"
    assert lab.releases.current() == "1.0.0"
    assert not (lab.root / "opt/xcc/staging").exists()


async def test_a_release_named_like_staging_survives_later_installs(lab, probe_port):
    """Version 2.0.0-rc.tmp is a release like any other: a refused install, then a rolled-back
    one, leave it in place and running (issue 14, case 2)."""
    v = "2.0.0-rc.tmp"
    assert (await lab.install(packages.good(lab.pkgs, lab.key, v, port=probe_port)))[-1].phase == "COMMITTED"
    good = packages.good(lab.pkgs, lab.key, "3.0.0", port=probe_port)
    m = packages.manifest_of(good)
    bad = packages.raw_package(
        lab.pkgs, lab.key.read_bytes(), m, [packages.member("payload/bin/xcc", b"not it")], name="hash.tgz"
    )
    with pytest.raises(InvalidArgument):
        await lab.install(bad)
    assert (lab.root / f"opt/xcc/releases/{v}/bin/xcc").is_file()
    assert (lab.root / "opt/xcc/current/bin/xcc").is_file(), "current still points at a release"
    events = await lab.install(packages.good(lab.pkgs, lab.key, "3.0.1", port=closed_port(), variant="bad-health"))
    assert events[-1].phase == "ROLLED_BACK"
    assert lab.releases.current() == v
    assert (lab.root / "opt/xcc/current/bin/xcc").is_file()


async def test_a_second_install_of_the_same_upload_gets_a_clear_answer(lab, probe_port):
    upload_id = await lab.stage(packages.good(lab.pkgs, lab.key, "1.0.0", port=probe_port))
    first = lab.install_service.install(upload_id)
    assert (await anext(first)).phase == "VERIFYING"
    with pytest.raises(Aborted, match="being installed"):
        await anext(lab.install_service.install(upload_id))
    assert [e.phase async for e in first][-1] == "COMMITTED"
    with pytest.raises(FailedPrecondition, match="already installed"):
        await anext(lab.install_service.install(upload_id))


async def test_key_files_that_cannot_be_used_are_named(lab, probe_port):
    keys = lab.root / "etc/keys"
    (keys / "dir.pub").mkdir()
    (keys / "junk.pub").write_bytes(b"\xff" * 100)
    (keys / "dangling.pub").symlink_to("nowhere")
    (keys / "huge.pub").write_bytes(b"A" * (1 << 20))
    events = await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=probe_port))
    assert events[-1].phase == "COMMITTED", "the good key still counts"
    (keys / "vendor.pub").unlink()
    with pytest.raises(PermissionDenied) as exc:
        await lab.install(packages.good(lab.pkgs, lab.key, "1.1.0", port=probe_port))
    for name in ("dir.pub", "junk.pub", "dangling.pub", "huge.pub"):
        assert name in str(exc.value)


async def test_bad_packages_are_refused_and_the_old_release_is_untouched(lab, probe_port, fake_systemd):
    await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=probe_port))
    before = sorted(str(p.relative_to(lab.root)) for p in (lab.root / "opt/xcc").rglob("*"))
    restarts = fake_systemd.behaviour.calls.count(("RestartUnit", "xcc.service"))
    cases = bad_packages(lab, probe_port)
    assert len(cases) >= 26
    for what, (path, error) in cases.items():
        with pytest.raises(error):
            await lab.install(path)
        after = sorted(str(p.relative_to(lab.root)) for p in (lab.root / "opt/xcc").rglob("*"))
        assert after == before, f"{what}: the releases changed"
        assert lab.releases.current() == "1.0.0", what
    assert fake_systemd.behaviour.calls.count(("RestartUnit", "xcc.service")) == restarts, "XCC was never touched"
    # ... and a downgrade does go in when forced
    events = await lab.install(packages.good(lab.pkgs, lab.key, "0.9.0", port=probe_port), allow_downgrade=True)
    assert events[-1].phase == "COMMITTED"


async def test_zstd_and_plain_packages(lab, probe_port):
    for version, compression in (("1.0.0", "zstd"), ("1.0.1", "")):
        path = packages.good(lab.pkgs, lab.key, version, port=probe_port, compression=compression)
        assert (await lab.install(path))[-1].phase == "COMMITTED"


async def test_unsigned_only_when_allowed(lab, probe_port):
    path = packages.raw_package(
        lab.pkgs,
        packages.other_key(),
        packages.manifest_of(packages.good(lab.pkgs, lab.key, "5.0.0", port=probe_port)),
        [],
        name="unsigned.tgz",
    )
    with pytest.raises(PermissionDenied):
        await lab.install(path)
    lab.install_service.allow_unsigned = True
    with pytest.raises(InvalidArgument, match="not in the package"):  # past the signature, into the checks
        await lab.install(path)
    await asyncio.sleep(0)


async def test_a_rollback_never_removes_a_unit_it_could_not_read(lab, probe_port):
    """Red team: read_unit_file gives None for a unit that is not UTF-8 text (an operator's
    Latin-1 comment) or cannot be read, the journal saved "" for it, and the rollback then took
    it for "there was none" and REMOVED the previous release's unit."""
    unit_file = lab.root / "etc/systemd/system/xcc.service"
    await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=probe_port))
    unit_file.write_bytes(unit_file.read_bytes() + b"# caf\xe9\n")
    events = await lab.install(packages.good(lab.pkgs, lab.key, "2.0.0", port=closed_port(), variant="bad-health"))
    assert events[-1].phase == "ROLLED_BACK"
    assert unit_file.exists()
    assert lab.releases.current() == "1.0.0"


async def test_a_rollback_keeps_a_masked_unit_masked(lab, probe_port):
    """An empty unit file is a masked unit (systemd.unit(5)); it was saved as "" and removed."""
    unit_file = lab.root / "etc/systemd/system/xcc.service"
    await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=probe_port))
    unit_file.write_text("")
    events = await lab.install(packages.good(lab.pkgs, lab.key, "2.0.0", port=closed_port(), variant="bad-health"))
    assert events[-1].phase == "ROLLED_BACK"
    assert unit_file.exists()
    assert unit_file.read_text() == ""
