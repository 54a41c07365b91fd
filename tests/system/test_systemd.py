"""The systemd adapter against a fake systemd1 on a private bus (real D-Bus protocol)."""

from __future__ import annotations

import asyncio
import time

import pytest

from satbridge.core.units import JobFailed
from satbridge.errors import DeadlineExceeded, NotFound, Unavailable
from satbridge.system.systemd import SystemdUnits
from tests.lab.fake_systemd import FakeSystemd, forge_job_removed


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


async def _job_begun(fake: FakeSystemd, after: int = 0) -> str:
    """The path of the next job the fake dispatched."""
    for _ in range(500):
        begun = [job for kind, job, _ in fake.behaviour.events[after:] if kind == "begin"]
        if begun:
            return begun[0]
        await asyncio.sleep(0.01)
    raise AssertionError("the fake systemd never got the job")


async def _forged_while_waiting(units, fake, verb: str, forged: str) -> tuple[asyncio.Task[None], float]:
    """Dispatch `verb`, forge its JobRemoved(`forged`) while it waits; return the task and when
    the forgery had been routed."""
    after = len(fake.behaviour.events)
    task = asyncio.create_task(units.run_job(verb, "xcc.service", timeout=10))
    job = await _job_begun(fake, after)
    await forge_job_removed(fake.address, (await units.bus()).unique_name, job, "xcc.service", forged)
    forged_at = time.monotonic()
    await asyncio.sleep(0.2)
    assert not task.done(), f"run_job returned on a forged JobRemoved({forged!r})"
    return task, forged_at


async def _ended_after(fake: FakeSystemd, forged_at: float) -> None:
    ends = [at for kind, _, at in fake.behaviour.events if kind == "end"]
    assert ends
    assert ends[-1] > forged_at, "the real job ended after the forgery"


async def test_a_forged_done_does_not_end_a_job_that_fails(units, fake_systemd):
    fake_systemd.behaviour.job_seconds = 1.0
    fake_systemd.behaviour.fail_jobs = True
    task, forged_at = await _forged_while_waiting(units, fake_systemd, "restart", "done")
    with pytest.raises(JobFailed) as exc:
        await task
    assert exc.value.result == "failed"
    await _ended_after(fake_systemd, forged_at)


async def test_a_forged_failure_does_not_fail_a_job_that_succeeds(units, fake_systemd):
    fake_systemd.behaviour.job_seconds = 1.0
    task, forged_at = await _forged_while_waiting(units, fake_systemd, "restart", "failed")
    await task  # the real JobRemoved ("done") still ends it
    await _ended_after(fake_systemd, forged_at)


async def test_a_forgery_that_beats_the_job_reply_is_ignored(units, fake_systemd):
    # A JobRemoved that arrives before StartUnit's reply is kept for the job path it names;
    # a forged one must not be kept: it would end the next job with that path at once.
    await units.run_job("start", "xcc.service", timeout=5)  # subscribed; job 1 done
    me = (await units.bus()).unique_name
    await forge_job_removed(fake_systemd.address, me, "/org/freedesktop/systemd1/job/2", "xcc.service", "done")
    fake_systemd.behaviour.fail_jobs = True
    with pytest.raises(JobFailed):
        await units.run_job("restart", "xcc.service", timeout=5)


async def test_a_restarted_systemd_is_followed(bus_address, tmp_path):
    units = SystemdUnits(bus_address, tmp_path)
    first = await FakeSystemd(bus_address).start()
    try:
        await units.run_job("start", "xcc.service", timeout=5)
    finally:
        await first.stop()
    # While nobody owns the name, nothing is trusted; the new systemd has a new unique name.
    second = await FakeSystemd(bus_address).start()
    try:
        assert second.unique_name != first.unique_name
        second.behaviour.job_seconds = 1.0
        second.behaviour.fail_jobs = True
        task, forged_at = await _forged_while_waiting(units, second, "restart", "done")
        with pytest.raises(JobFailed):
            await task
        await _ended_after(second, forged_at)
        # A new systemd knows no subscribers: without a new Subscribe() it sends no JobRemoved.
        calls = second.behaviour.calls
        assert calls.index(("Subscribe",)) < calls.index(("RestartUnit", "xcc.service"))
    finally:
        await second.stop()
        await units.close()
