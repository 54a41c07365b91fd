"""The systemd adapter and XccService against a REAL systemd: the appliance rootfs in nspawn."""

from __future__ import annotations

import contextlib
import time

import pytest

from satbridge.core.units import JobFailed, render_xcc_unit
from satbridge.errors import Aborted, DeadlineExceeded, NotFound
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


def _xcc(units, appliance, *, settle: float = 1.5) -> XccService:
    return XccService(
        units,
        JournalLogs(appliance.journal),
        FileLocks(appliance.root / "run"),
        Releases(appliance.root / "opt/xcc"),
        settle_seconds=settle,
    )


def _script(appliance, name: str, text: str) -> str:
    path = appliance.root / "opt/xcc-lab" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return f"/opt/xcc-lab/{name}"


async def _install(units, text: str) -> None:
    await units.run_job("stop", "xcc.service", timeout=30)
    await units.write_unit_file("xcc.service", text)
    # A unit that failed before keeps its Result until reset; start each case clean.
    with contextlib.suppress(NotFound):  # not loaded: nothing to reset
        await units._call("ResetFailedUnit", "s", ["xcc.service"])


def _unit(command: str) -> str:
    return render_xcc_unit(command.split(), working_directory="/", log_directory="xcc")


# Issue 18, case 1: each way a start goes wrong comes back as the README's table says.
START_FAILURES = {
    "missing binary": (lambda a: "/opt/xcc-lab/no-such-binary", "exit status 203"),
    "bad #!": (lambda a: _script(a, "bad-shebang", "#!/nonexistent/interpreter\necho never\n"), "exit status 203"),
    "crash at start": (
        lambda a: _script(a, "crash", "#!/bin/sh\necho 'xcc: port 5060 already in use'\nexit 4\n"),
        "port 5060 already in use",
    ),
}


@pytest.mark.parametrize("case", sorted(START_FAILURES))
async def test_a_start_that_fails_is_aborted_with_result_status_and_log(units, appliance, case):
    command, expected = START_FAILURES[case]
    await _install(units, _unit(command(appliance)))
    with pytest.raises(Aborted) as failed:
        await _xcc(units, appliance).control("start", timeout=30)
    text = str(failed.value)
    assert "Result=exit-code" in text, text
    assert expected in text, text
    await units.run_job("stop", "xcc.service", timeout=30)


async def test_a_start_that_hangs_is_deadline_exceeded(units, appliance):
    text = _unit("/usr/bin/sleep 600").replace("[Service]\n", "[Service]\nExecStartPre=/usr/bin/sleep 600\n")
    await _install(units, text)
    with pytest.raises(DeadlineExceeded):
        await _xcc(units, appliance).control("start", timeout=2)
    await units.run_job("stop", "xcc.service", timeout=30)


async def test_a_unit_from_the_field_is_upgraded_to_type_exec(units, appliance):
    # Satellites in the field run units an older bridge rendered with Type=simple, for which a
    # missing binary looked like a successful start.
    old = _unit("/opt/xcc-lab/no-such-binary").replace("Type=exec\n", "Type=simple\n")
    await _install(units, old)
    with pytest.raises(Aborted, match="exit status 203"):
        await _xcc(units, appliance).control("start", timeout=30)
    assert "Type=exec\n" in (appliance.root / "etc/systemd/system/xcc.service").read_text()
    await units.run_job("stop", "xcc.service", timeout=30)


async def test_a_good_start_settles_active(units, appliance):
    await _install(units, _unit("/usr/bin/python3 -m http.server --bind 127.0.0.1 8080"))
    status = await _xcc(units, appliance).control("start", timeout=30)
    assert (status.unit.active_state, status.unit.sub_state) == ("active", "running")
    await units.run_job("stop", "xcc.service", timeout=30)
