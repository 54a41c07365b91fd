"""Factory reset back to the delivered state, step by step, idempotent, across processes."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from satbridge.client.inventory import Inventory
from satbridge.client.session import connect, pair
from satbridge.client.update import Updater
from satbridge.core import firewall as fw
from satbridge.errors import Unauthenticated, Unavailable
from satbridge.wiring import wire
from tests.conftest import loopback_config, pair_with, serve_bridge
from tests.lab import packages

KEPT = {"etc/satbridge/satbridge.toml", "etc/satbridge/keys/vendor.pub", "var/log/satbridge/audit.log"}  # config, log
ADAPTER_STATE = {"var/lib/satbridge/sandbox-firewall.json", "var/lib/satbridge/sandbox-network.json"}


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


@pytest.fixture
async def satellite(tmp_path, fake_systemd):
    root = tmp_path / "root"
    (root / "etc/satbridge").mkdir(parents=True)
    (root / "etc/satbridge/satbridge.toml").write_text("[update]\nhealth_gate_seconds = 0.2\n")
    async with serve_bridge(replace(loopback_config(root), dbus_address=fake_systemd.address)) as run:
        yield run


async def test_factory_reset_reaches_the_delivered_state(satellite, inventory, tmp_path, probe_port, fake_systemd):
    root = satellite.bridge.config.paths.root
    delivered_root = tmp_path / "delivered"
    (delivered_root / "etc/satbridge").mkdir(parents=True)
    await wire(loopback_config(delivered_root)).aclose()  # what a brand-new satellite holds after its first start
    delivered = files(delivered_root) - {"etc/satbridge/satbridge.toml"}

    sat = await pair_with(satellite, inventory)
    key = packages.trusted_key(root / "etc/satbridge", tmp_path)
    old_identity = satellite.bridge.identity.current().fingerprint
    instance, _ = satellite.bridge.state.current()
    async with connect(sat, inventory) as client:
        updater = Updater(client.channel)
        done = await updater.install(
            await updater.upload(packages.good(tmp_path, key, "1.0.0", port=probe_port), progress=False)
        )
        assert done.version == "1.0.0"
    (root / "var/log/xcc").mkdir(parents=True, exist_ok=True)
    (root / "var/log/xcc/xcc.log").write_text("calls\n")
    await satellite.bridge.firewall.set(
        fw.from_json({"rules": [{"protocol": "tcp", "action": "accept", "ports": [5060]}]}), by="test"
    )
    await satellite.bridge.network.set_static("192.0.2.10/24", "192.0.2.1", [], confirm_timeout=300)  # pending

    steps = [step async for step in satellite.bridge.factory_reset.run(by="test")]
    assert [s.done for s in steps] == [True] * 5, steps

    assert satellite.bridge.identity.current().fingerprint != old_identity
    assert satellite.bridge.state.current()[0] != instance, "a new instance"
    assert not satellite.bridge.pairing.status().paired
    assert not (root / "opt/xcc").exists()
    assert not (root / "etc/systemd/system/xcc.service").exists()
    assert ("DisableUnitFiles", "xcc.service") in fake_systemd.behaviour.calls
    assert (await satellite.bridge.network.show()).method == "auto"
    factory = fw.plan(satellite.bridge.firewall.factory(), satellite.bridge.firewall.bridge_ports)
    assert (await satellite.bridge.firewall_backend.read())["v4"] == fw.expected_lines(factory, "v4")
    now = files(root) - KEPT - ADAPTER_STATE
    assert now == delivered, f"extra: {now - delivered}, missing: {delivered - now}"
    assert (root / "etc/satbridge/satbridge.toml").exists(), "the config stays"
    assert "factory-reset-finished" in (root / "var/log/satbridge/audit.log").read_text()

    again = [step async for step in satellite.bridge.factory_reset.run(by="test")]
    assert all(s.done for s in again), "running it again is harmless"


async def test_an_interrupted_reset_finishes_when_run_again(satellite, inventory):
    await pair_with(satellite, inventory)
    network = satellite.bridge.network
    real = network.set_dhcp

    async def broken(**kw):
        raise Unavailable("NetworkManager is not running")

    network.set_dhcp = broken  # type: ignore[method-assign]
    first = [step async for step in satellite.bridge.factory_reset.run(by="test")]
    assert [s.done for s in first] == [True, True, True, False, True]
    network.set_dhcp = real  # type: ignore[method-assign]
    second = [step async for step in satellite.bridge.factory_reset.run(by="test")]
    assert all(s.done for s in second)


async def test_a_reset_from_the_console_takes_effect_in_the_running_server(satellite, inventory):
    """`satbridge factory-reset --yes` in another process: the old pairing is refused, and the
    server listens again with the new identity, so pairing anew works with no restart."""
    sat = await pair_with(satellite, inventory)
    root = satellite.bridge.config.paths.root
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "satbridge",
        "--root",
        str(root),
        "--sandbox",
        "factory-reset",
        "--yes",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"SATBRIDGE_DBUS_ADDRESS": satellite.bridge.config.dbus_address, "PATH": "/usr/bin:/bin"},
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    assert b"factory reset complete" in out
    async with connect(sat, inventory) as client:
        with pytest.raises((Unauthenticated, Unavailable)):
            await client.status()
    new_fp = satellite.bridge.identity.current().fingerprint.hex()
    for _ in range(50):  # the server notices within a second or two
        await asyncio.sleep(0.1)
        try:
            fresh = Inventory.load(inventory.directory.parent / "fresh")
            code = satellite.bridge.pairing.open_window().code
            again = await pair(
                "127.0.0.1",
                code,
                inventory=fresh,
                server_name="central",
                port=satellite.bound.management,
                pairing_port=satellite.bound.pairing,
            )
            break
        except Exception:
            continue
    else:
        raise AssertionError("pairing with the new identity never worked")
    assert again.fingerprint == new_fp


async def test_factory_reset_needs_yes(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "satbridge",
        "--root",
        str(tmp_path),
        "--sandbox",
        "factory-reset",
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"--yes" in err


async def test_a_reset_goes_on_past_a_step_that_raises_anything(tmp_path, monkeypatch):
    """Red team 18, finding 1: a step that fails with an unexpected error (KeyError) is reported
    as failed, naming it, and every other step still runs."""
    bridge = wire(loopback_config(tmp_path / "root"))
    try:

        async def broken(*args, **kwargs):
            raise KeyError("revision")

        monkeypatch.setattr(bridge.firewall, "reset", broken)
        steps = [step async for step in bridge.factory_reset.run(by="test")]
    finally:
        await bridge.aclose()
    failed = [s for s in steps if not s.done]
    assert [s.name for s in failed] == ["restore the factory firewall"]
    assert "KeyError" in failed[0].detail
    assert steps[-1].done
    assert steps[-1].name == "a new identity and a clean state"


async def test_one_factory_reset_at_a_time_across_callers_and_processes(tmp_path):
    """Red team 19, finding 5: two consoles (or a console and the CLI) ran factory reset at
    once, steps interleaved. A second caller now gets a clear refusal naming the first."""
    from satbridge.errors import FailedPrecondition

    root = tmp_path / "root"
    bridge = wire(loopback_config(root))
    try:
        first = bridge.factory_reset.run(by="console tty1")
        step = await anext(first)  # the first reset is under way, holding the lock
        assert step.name == "disconnect the server"
        with pytest.raises(
            FailedPrecondition, match=r"a factory reset is already running \(started by console tty1 at"
        ):
            await anext(bridge.factory_reset.run(by="console ttyS0"))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "satbridge",
            "--root",
            str(root),
            "--sandbox",
            "factory-reset",
            "--yes",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode != 0
        assert b"a factory reset is already running (started by console tty1 at" in err
        assert b"Traceback" not in err
        assert out == b"", "no step of a second reset ran"
        rest = [s async for s in first]
        assert all(s.done for s in rest)
        # released: the next reset runs
        again = [s async for s in bridge.factory_reset.run(by="console ttyS0")]
        assert all(s.done for s in again)
    finally:
        await bridge.aclose()
    events = [
        line for line in (root / "var/log/satbridge/audit.log").read_text().splitlines() if "factory-reset" in line
    ]
    assert len(events) == 4, events  # started/finished twice, never interleaved
    assert "started" in events[0]
    assert "finished" in events[1]
