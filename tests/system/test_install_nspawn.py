"""Install against a REAL systemd: the appliance in nspawn runs the demo XCC; the health gate
probes it inside the container's network; a crashing release is rolled back."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest

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
from tests.lab.appliance import booted

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def appliance(tmp_path_factory):
    with booted("satinstall", log=tmp_path_factory.mktemp("lab") / "nspawn.log") as lab:
        yield lab


async def install(service: InstallService, update: UpdateService, path: Path) -> list:
    data = path.read_bytes()
    m = packages.manifest_of(path)
    begun = await update.begin(m.name, m.version, len(data), hashlib.sha256(data).hexdigest())

    async def chunks():
        yield begun.upload_id, 0, data

    await update.upload(chunks())
    return [event async for event in service.install(begun.upload_id)]


async def test_install_update_and_rollback_on_real_systemd(appliance, tmp_path):
    root = appliance.root
    state_dir = tmp_path / "state"
    store = DirStore(state_dir)
    staging, releases = Staging(state_dir / "uploads"), Releases(root / "opt/xcc")
    units = SystemdUnits(appliance.bus_address, root)
    key = packages.trusted_key(tmp_path / "etc", tmp_path / "pkgs")
    service = InstallService(
        staging,
        releases,
        PackageIO(),
        units,
        Prober(Path(f"/proc/{appliance.leader}/ns/net")),
        store,
        FileLocks(state_dir),
        ListAudit(),
        StateService(store, CountingEntropy()),
        time.time,
        tmp_path / "etc/keys",
        health_gate=3,
    )
    update = UpdateService(staging, releases, PackageIO())
    try:
        first = await install(service, update, packages.good(tmp_path / "pkgs", key, "1.0.0", probe="http"))
        assert first[-1].phase == "COMMITTED", first[-1]
        state = await units.state("xcc.service")
        assert (state.active_state, state.sub_state) == ("active", "running")
        assert state.enabled
        v1_pid = state.main_pid

        second = await install(service, update, packages.good(tmp_path / "pkgs", key, "1.1.0", probe="http"))
        assert second[-1].phase == "COMMITTED"
        assert (await units.state("xcc.service")).main_pid != v1_pid, "restarted on the new release"

        broken = await install(
            service, update, packages.good(tmp_path / "pkgs", key, "2.0.0", variant="crash", probe="http")
        )
        assert broken[-1].phase == "ROLLED_BACK"
        assert broken[-1].reason
        assert releases.current() == "1.1.0"
        state = await units.state("xcc.service")
        assert state.active_state == "active", "back on 1.1.0, running"
        log = (root / "var/log/xcc/xcc.log").read_text()
        assert "crashing on purpose" in log, "the demo XCC logged under /var/log/xcc"
    finally:
        await units.close()


async def test_hostile_packages_on_the_appliance_rootfs(appliance, tmp_path):
    """Issue 14 in the real-systemd lab: the link chain is refused with nothing created outside
    staging, and the generated hostile layouts run once against the appliance's own /opt/xcc."""
    import contextlib
    import shutil
    import tarfile

    import pytest
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from satbridge.core.package import Limits
    from satbridge.errors import InvalidArgument
    from tests.system import test_package as prop

    root = appliance.root
    state_dir = tmp_path / "state"
    store = DirStore(state_dir)
    staging, releases = Staging(state_dir / "uploads"), Releases(root / "opt/xcc")
    units = SystemdUnits(appliance.bus_address, root)
    key = packages.trusted_key(tmp_path / "etc", tmp_path / "pkgs")
    service = InstallService(
        staging, releases, PackageIO(), units, Prober(Path(f"/proc/{appliance.leader}/ns/net")), store,
        FileLocks(state_dir), ListAudit(), StateService(store, CountingEntropy()), time.time, tmp_path / "etc/keys",
        health_gate=1,
    )  # fmt: skip
    update = UpdateService(staging, releases, PackageIO())
    try:
        good = packages.good(tmp_path / "pkgs", key, "9.0.0", probe="http")
        m = packages.manifest_of(good)
        xcc = (Path(packages.demo.__file__).parent / "payload/bin/xcc").read_bytes()
        sym, directory = tarfile.SYMTYPE, tarfile.DIRTYPE
        chain = [
            packages.member("payload/bin/xcc", xcc),
            packages.member("payload/VERSION", b"9.0.0\n"),
            packages.member("payload/a", kind=sym, link="."),
            packages.member("payload/a/b", kind=sym, link=".."),
            packages.member("payload/e", kind=sym, link="b/9.0.0.tmp/b/9.0.0.tmp/b/../../.."),
            packages.member("payload/e/escaped", kind=directory),
        ]
        bad = packages.raw_package(tmp_path / "pkgs", key.read_bytes(), m, chain, name="chain.tgz")
        before = prop.snapshot(root / "etc", root / "opt/xcc/staging")
        with pytest.raises(InvalidArgument):
            await install(service, update, bad)
        assert prop.snapshot(root / "etc", root / "opt/xcc/staging") == before
        assert not list((root / "opt").rglob("escaped"))

        lab_dir = root / "opt/xcc"
        lab_dir.mkdir(parents=True, exist_ok=True)

        @settings(max_examples=prop.EXAMPLES, deadline=None, suppress_health_check=list(prop.HealthCheck))
        @given(members=st.lists(st.tuples(prop._path, prop._kind, prop._path), max_size=8))
        def hostile(members):
            dest = lab_dir / "staging/0.0.0"
            dest.parent.mkdir(exist_ok=True)
            snap = prop.snapshot(root / "opt", dest)
            path, manifest = prop.hostile_package(tmp_path, members)
            with contextlib.suppress(InvalidArgument):
                prop.extract(path, dest, manifest, Limits())
            after = prop.snapshot(root / "opt", dest)
            shutil.rmtree(dest, ignore_errors=True)
            assert after == snap

        hostile()
        (lab_dir / "staging").rmdir()
    finally:
        await units.close()


def _in_appliance(appliance, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", "-t", str(appliance.leader), "-a", *argv], capture_output=True, text=True, timeout=60
    )


def _show(appliance, *props: str) -> dict[str, str]:
    out = _in_appliance(appliance, "systemctl", "show", "xcc.service", *[f"-p{p}" for p in props]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


async def test_a_rollback_restores_the_old_releases_unit_on_real_systemd(appliance, tmp_path):
    """Red team, issue 14: after ROLLED_BACK the old release ran with the failed release's
    ExecStart (here: --crash-after 1) and kept crashing. Now systemd runs the old command, and
    XCC stays active beyond several restarts' time (RestartSec=2)."""
    import asyncio

    root = appliance.root
    state_dir = tmp_path / "state"
    store = DirStore(state_dir)
    staging, releases = Staging(state_dir / "uploads"), Releases(root / "opt/xcc")
    units = SystemdUnits(appliance.bus_address, root)
    key = packages.trusted_key(tmp_path / "etc", tmp_path / "pkgs")
    service = InstallService(
        staging, releases, PackageIO(), units, Prober(Path(f"/proc/{appliance.leader}/ns/net")), store,
        FileLocks(state_dir), ListAudit(), StateService(store, CountingEntropy()), time.time, tmp_path / "etc/keys",
        health_gate=3,
    )  # fmt: skip
    update = UpdateService(staging, releases, PackageIO())
    try:
        first = await install(service, update, packages.good(tmp_path / "pkgs", key, "3.0.0", probe="http"))
        assert first[-1].phase == "COMMITTED", first[-1]
        before = _show(appliance, "ExecStart")["ExecStart"]
        broken = await install(
            service, update, packages.good(tmp_path / "pkgs", key, "4.0.0", variant="crash", probe="http")
        )
        assert broken[-1].phase == "ROLLED_BACK", broken[-1]
        assert releases.current() == "3.0.0"
        await asyncio.sleep(8)
        after = _show(appliance, "ExecStart", "NRestarts", "ActiveState", "LoadState")
        assert "--crash-after" not in after["ExecStart"]
        assert after["ExecStart"].split(";")[:2] == before.split(";")[:2], (before, after)
        assert (after["LoadState"], after["ActiveState"], after["NRestarts"]) == ("loaded", "active", "0"), after
    finally:
        await units.close()


def test_systemd_reads_the_rendered_argv_back_exactly(appliance):
    """The quoting of core.units.exec_word, once against the real systemd: a unit with odd
    arguments passes systemd-analyze verify, its ExecStart property (D-Bus, an array of strings,
    before variables are substituted at exec) holds the argv with `$` still doubled, and the
    process started gets exactly the argv (a shell prints its arguments one per line)."""
    import json

    from satbridge.core.units import render_xcc_unit

    odd = ["%n", "$HOME", "${X}", "\\x41", "a b", ";", "'q'", '"dq"', "é€", "-x", "\\", "%%", "$$", "$(id)"]
    argv = ["/bin/sh", "-c", 'printf "%s\\n" "$@" > /run/quotetest.out', "sh", *odd]
    unit = appliance.root / "etc/systemd/system/quotetest.service"
    unit.write_text(render_xcc_unit(argv, working_directory="/", log_directory="quotetest"))
    try:
        assert _in_appliance(appliance, "systemctl", "daemon-reload").returncode == 0
        verify = _in_appliance(appliance, "systemd-analyze", "verify", "/etc/systemd/system/quotetest.service")
        assert "quotetest" not in verify.stderr, verify.stderr
        prop = _in_appliance(
            appliance, "busctl", "--json=short", "get-property", "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1/unit/quotetest_2eservice", "org.freedesktop.systemd1.Service", "ExecStart",
        )  # fmt: skip
        assert prop.returncode == 0, prop.stderr
        ((path, args, *_),) = json.loads(prop.stdout)["data"]
        assert (path, args) == (argv[0], [a.replace("$", "$$") for a in argv])
        started = _in_appliance(appliance, "systemctl", "start", "quotetest.service")
        assert started.returncode == 0, started.stderr
        printed = _in_appliance(appliance, "cat", "/run/quotetest.out").stdout
        assert printed.splitlines() == odd
    finally:
        _in_appliance(appliance, "systemctl", "stop", "quotetest.service")
        _in_appliance(appliance, "rm", "-f", "/run/quotetest.out")
        unit.unlink(missing_ok=True)
        _in_appliance(appliance, "systemctl", "daemon-reload")
