"""The systemd adapter and XccService against a REAL systemd: the appliance rootfs in nspawn."""

from __future__ import annotations

import time

import pytest

from satbridge.core.units import JobFailed
from satbridge.errors import Aborted
from satbridge.services.xcc import XccService
from satbridge.system.files import FileLocks
from satbridge.system.journal import JournalLogs
from satbridge.system.releases import Releases
from satbridge.system.systemd import SystemdUnits
from tests.lab.appliance import booted

pytestmark = pytest.mark.lab

SERVING = """[Unit]
Description=XCC stand-in for the lab

[Service]
ExecStart=/usr/bin/python3 -m http.server --bind 127.0.0.1 8080

[Install]
WantedBy=multi-user.target
"""
FAILING = """[Unit]
Description=XCC that cannot start

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "xcc: cannot open /etc/xcc/license"; exit 3'
"""


@pytest.fixture(scope="module")
def appliance(tmp_path_factory):
    started = time.monotonic()
    with booted(log=tmp_path_factory.mktemp("lab") / "nspawn.log") as lab:
        print(f"appliance booted in {time.monotonic() - started:.1f} s")
        yield lab


@pytest.fixture
async def units(appliance):
    adapter = SystemdUnits(appliance.bus_address, appliance.root)
    try:
        yield adapter
    finally:
        await adapter.close()


async def test_real_start_restart_stop(units, appliance):
    await units.write_unit_file("xcc.service", SERVING)
    await units.run_job("start", "xcc.service", timeout=30)
    state = await units.state("xcc.service")
    assert (state.active_state, state.sub_state) == ("active", "running")
    assert state.main_pid > 0
    first_pid = state.main_pid
    await units.run_job("restart", "xcc.service", timeout=30)
    state = await units.state("xcc.service")
    assert state.active_state == "active"
    assert state.main_pid not in (0, first_pid)
    await units.enable("xcc.service")
    assert (await units.state("xcc.service")).enabled
    await units.disable("xcc.service")
    await units.run_job("stop", "xcc.service", timeout=30)
    assert (await units.state("xcc.service")).active_state == "inactive"


async def test_real_failed_unit_reports_result_and_logs(units, appliance):
    await units.write_unit_file("xcc.service", FAILING)
    with pytest.raises(JobFailed) as exc:
        await units.run_job("start", "xcc.service", timeout=30)
    assert exc.value.result == "failed"
    state = await units.state("xcc.service")
    assert (state.active_state, state.result, state.exec_main_status) == ("failed", "exit-code", 3)
    xcc = XccService(
        units, JournalLogs(appliance.journal), FileLocks(appliance.root / "run"), Releases(appliance.root / "opt/xcc")
    )
    with pytest.raises(Aborted) as failed:
        await xcc.control("start", timeout=30)
    assert "Result=exit-code" in str(failed.value)
    assert "cannot open /etc/xcc/license" in str(failed.value), "the unit's last journal lines"
