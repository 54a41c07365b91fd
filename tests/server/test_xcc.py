"""Xcc over gRPC and satctl: the RPCs reach systemd's (fake) D-Bus API through the bridge."""

from __future__ import annotations

from dataclasses import replace

import pytest

from satbridge.client.session import connect
from satbridge.core.units import render_xcc_unit
from satbridge.errors import Aborted, FailedPrecondition
from satbridge.wiring import wire
from tests.conftest import loopback_config, pair_with, serve_bridge


@pytest.fixture
async def running_on_bus(root, fake_systemd):
    async with serve_bridge(replace(loopback_config(root), dbus_address=fake_systemd.address)) as run:
        yield run


def install(root) -> None:
    unit = root / "etc/systemd/system/xcc.service"
    unit.parent.mkdir(parents=True)
    unit.write_text(render_xcc_unit(["/opt/xcc/current/xcc"], working_directory="/opt/xcc", log_directory="xcc"))
    (root / "opt/xcc/releases/1.0.0").mkdir(parents=True)
    (root / "opt/xcc/current").symlink_to("releases/1.0.0")


async def test_xcc_over_grpc(running_on_bus, inventory, root, fake_systemd):
    sat = await pair_with(running_on_bus, inventory)
    async with connect(sat, inventory) as client:
        with pytest.raises(FailedPrecondition):
            await client.xcc_control("start")
        install(root)
        state = await client.xcc_control("start")
        assert state.installed
        assert state.active_state == "active"
        assert state.version == "1.0.0"
        assert state.main_pid == 4242
        status = await client.status()
        assert status.xcc.active_state == "active"
        fake_systemd.behaviour.fail_jobs = True
        with pytest.raises(Aborted, match="exit-code"):
            await client.xcc_control("restart")
        assert (await client.xcc_state()).active_state == "failed"


async def test_unpair_stops_xcc(running_on_bus, inventory, root, fake_systemd):
    install(root)
    sat = await pair_with(running_on_bus, inventory)
    async with connect(sat, inventory) as client:
        await client.xcc_control("start")
        await client.unpair()
    assert fake_systemd.behaviour.calls[-1] == ("LoadUnit", "xcc.service")
    assert ("StopUnit", "xcc.service") in fake_systemd.behaviour.calls
    assert (root / "opt/xcc/current").exists(), "XCC stays installed"


async def test_status_warns_when_systemd_is_unreachable(root, bus_address, inventory):
    config = replace(loopback_config(root), dbus_address=bus_address)  # no systemd on this bus
    bridge = wire(config)
    install(root)
    status = await bridge.status.get()
    await bridge.aclose()
    assert status.xcc is None
    assert any("XCC state unavailable" in w for w in status.warnings)
