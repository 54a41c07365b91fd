"""XccService over the real systemd adapter and a fake systemd1 on a private bus."""

from __future__ import annotations

import asyncio

import pytest

from satbridge.core.units import render_xcc_unit
from satbridge.errors import Aborted, DeadlineExceeded, FailedPrecondition, InvalidArgument, Unavailable
from satbridge.services.xcc import XccService
from satbridge.system.files import FileLocks
from satbridge.system.releases import Releases
from satbridge.system.systemd import SystemdUnits


class CannedLogs:
    async def tail(self, unit: str, lines: int) -> list[str]:
        return [f"{unit}: listening failed: address in use", f"{unit}: exiting with 3"][-lines:]


@pytest.fixture
async def make(tmp_path):
    """XccService factory; closes every D-Bus connection it made."""
    made: list[SystemdUnits] = []

    def service(address: str, root=tmp_path) -> XccService:
        made.append(SystemdUnits(address, root))
        return XccService(made[-1], CannedLogs(), FileLocks(root / "state"), Releases(root / "opt/xcc"))

    yield service
    for units in made:
        await units.close()


async def install_unit(xcc: XccService, root) -> None:
    """What an install leaves behind: the unit file and the `current` release."""
    text = render_xcc_unit(["/opt/xcc/current/bin/xcc"], working_directory="/opt/xcc/current", log_directory="xcc")
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/xcc.service").write_text(text)
    (root / "opt/xcc/releases/2.4.1").mkdir(parents=True)
    (root / "opt/xcc/current").symlink_to("releases/2.4.1")


async def test_not_installed_is_a_failed_precondition(fake_systemd, tmp_path, make):
    xcc = make(fake_systemd.address, tmp_path)
    with pytest.raises(FailedPrecondition, match="not installed"):
        await xcc.control("start")
    assert not [c for c in fake_systemd.behaviour.calls if c[0] == "StartUnit"], "nothing was dispatched"
    assert not (await xcc.status()).installed


async def test_start_stop_restart_and_state(fake_systemd, tmp_path, make):
    xcc = make(fake_systemd.address, tmp_path)
    await install_unit(xcc, tmp_path)
    started = await xcc.control("start")
    assert started.installed
    assert started.version == "2.4.1"
    assert started.unit.active_state == "active"
    assert (await xcc.control("restart")).unit.sub_state == "running"
    assert (await xcc.control("stop")).unit.active_state == "inactive"


async def test_a_failed_job_says_why(fake_systemd, tmp_path, make):
    xcc = make(fake_systemd.address, tmp_path)
    await install_unit(xcc, tmp_path)
    fake_systemd.behaviour.fail_jobs = True
    with pytest.raises(Aborted) as exc:
        await xcc.control("start")
    message = str(exc.value)
    assert "job failed" in message
    assert "Result=exit-code" in message
    assert "exit status 3" in message
    assert "address in use" in message


async def test_timeout_is_deadline_exceeded_and_releases_the_lock(fake_systemd, tmp_path, make):
    xcc = make(fake_systemd.address, tmp_path)
    await install_unit(xcc, tmp_path)
    fake_systemd.behaviour.never_finish = True
    with pytest.raises(DeadlineExceeded):
        await xcc.control("start", timeout=0.3)
    fake_systemd.behaviour.never_finish = False
    await xcc.control("start", timeout=5)


@pytest.mark.parametrize("timeout", [-1, 601])
async def test_timeout_is_validated(fake_systemd, tmp_path, make, timeout):
    xcc = make(fake_systemd.address, tmp_path)
    with pytest.raises(InvalidArgument) as exc:
        await xcc.control("start", timeout=timeout)
    assert exc.value.field == "timeout_seconds"


async def test_concurrent_controls_do_not_interleave(fake_systemd, tmp_path, make):
    fake_systemd.behaviour.job_seconds = 0.2
    # Two services on one state dir: like the console and the server, two lock holders.
    first, second = make(fake_systemd.address), make(fake_systemd.address)
    await install_unit(first, tmp_path)
    await asyncio.gather(first.control("start"), second.control("stop"), first.control("restart"))
    events = fake_systemd.behaviour.events
    assert len(events) == 6
    for i in range(0, 6, 2):
        assert events[i][0] == "begin"
        assert events[i + 1][0] == "end"
        assert events[i][1] == events[i + 1][1], "each job ends before the next begins"


async def test_systemd_unreachable_is_unavailable(bus_address, tmp_path, make):
    xcc = make(bus_address)  # a bus with no systemd on it
    await install_unit(xcc, tmp_path)
    with pytest.raises(Unavailable):
        await xcc.control("start")
