"""The systemd adapter against a fake systemd1 on a private bus (real D-Bus protocol)."""

from __future__ import annotations

import pytest

from satbridge.core.units import JobFailed
from satbridge.errors import DeadlineExceeded, NotFound, Unavailable
from satbridge.system.systemd import SystemdUnits


@pytest.fixture
async def units(fake_systemd, tmp_path):
    adapter = SystemdUnits(fake_systemd.address, tmp_path)
    try:
        yield adapter
    finally:
        await adapter.close()


async def test_start_waits_for_the_job_and_subscribes_first(units, fake_systemd):
    await units.run_job("start", "xcc.service", timeout=5)
    calls = fake_systemd.behaviour.calls
    assert calls.index(("Subscribe",)) < calls.index(("StartUnit", "xcc.service"))
    state = await units.state("xcc.service")
    assert (state.active_state, state.sub_state, state.main_pid) == ("active", "running", 4242)
    assert state.since is not None
    assert state.loaded


async def test_stop_and_restart(units):
    await units.run_job("restart", "xcc.service", timeout=5)
    await units.run_job("stop", "xcc.service", timeout=5)
    state = await units.state("xcc.service")
    assert (state.active_state, state.sub_state, state.main_pid) == ("inactive", "dead", 0)


async def test_a_failed_job_reports_its_result(units, fake_systemd):
    fake_systemd.behaviour.fail_jobs = True
    with pytest.raises(JobFailed) as exc:
        await units.run_job("start", "xcc.service", timeout=5)
    assert exc.value.result == "failed"
    state = await units.state("xcc.service")
    assert (state.active_state, state.result, state.exec_main_status) == ("failed", "exit-code", 3)


async def test_a_job_that_never_ends_times_out(units, fake_systemd):
    fake_systemd.behaviour.never_finish = True
    with pytest.raises(DeadlineExceeded):
        await units.run_job("start", "xcc.service", timeout=0.5)


async def test_a_missing_unit_is_not_found(units, fake_systemd):
    fake_systemd.behaviour.unit_missing = True
    with pytest.raises(NotFound):
        await units.run_job("start", "xcc.service", timeout=5)


async def test_systemd_not_on_the_bus_is_unavailable(bus_address, tmp_path):
    units = SystemdUnits(bus_address, tmp_path)
    with pytest.raises(Unavailable):
        await units.state("xcc.service")
    await units.close()


async def test_no_bus_at_all_is_unavailable(tmp_path):
    units = SystemdUnits(f"unix:path={tmp_path / 'nothing'}", tmp_path)
    with pytest.raises(Unavailable):
        await units.run_job("start", "xcc.service", timeout=5)


async def test_enable_disable_and_unit_files(units, fake_systemd, tmp_path):
    assert not units.has_unit_file("xcc.service")
    await units.write_unit_file("xcc.service", "[Service]\nExecStart=/bin/true\n")
    assert (tmp_path / "etc/systemd/system/xcc.service").read_text().startswith("[Service]")
    await units.enable("xcc.service")
    assert (await units.state("xcc.service")).enabled
    await units.disable("xcc.service")
    assert not (await units.state("xcc.service")).enabled
    await units.remove_unit_file("xcc.service")
    assert not units.has_unit_file("xcc.service")
    assert fake_systemd.behaviour.calls.count(("Reload",)) == 4


async def test_reconnects_after_the_bus_connection_breaks(units, fake_systemd):
    await units.state("xcc.service")
    await (await units.bus()).close()
    await units.run_job("start", "xcc.service", timeout=5)
