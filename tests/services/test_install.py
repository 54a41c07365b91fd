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
from satbridge.errors import FailedPrecondition, InvalidArgument, PermissionDenied, SatbridgeError
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
        self.update = UpdateService(self.staging, self.releases)
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
    assert f"ExecStart=/opt/xcc/current/bin/xcc --port {probe_port}" in unit
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
    }


async def test_bad_packages_are_refused_and_the_old_release_is_untouched(lab, probe_port, fake_systemd):
    await lab.install(packages.good(lab.pkgs, lab.key, "1.0.0", port=probe_port))
    before = sorted(str(p.relative_to(lab.root)) for p in (lab.root / "opt/xcc").rglob("*"))
    restarts = fake_systemd.behaviour.calls.count(("RestartUnit", "xcc.service"))
    cases = bad_packages(lab, probe_port)
    assert len(cases) >= 13
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
