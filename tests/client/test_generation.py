"""satctl notices a snapshot revert (generation goes back) and a clone (shared instance id)."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace

from satbridge.client.cli import EXIT_WARNING
from satbridge.client.inventory import Inventory, Satellite
from satbridge.client.session import check_generation
from satbridge.server.app import BridgeServer
from satbridge.wiring import wire
from tests.conftest import Running, loopback_config, pair_with
from tests.fakes import FakeClock
from tests.lab.bridge import satctl


async def test_snapshot_revert_is_flagged(running: Running, inventory: Inventory):
    await pair_with(running, inventory)
    code, _, err = await satctl(inventory.directory, "status", "--strict")
    assert code == 0, err
    state = running.bridge.config.paths.state_dir
    snapshot = state.with_name("snapshot")
    shutil.copytree(state, snapshot)  # the VM's disk, as a snapshot holds it
    running.bridge.pairing.open_window()  # later changes...
    running.bridge.pairing.close_window()
    code, _, err = await satctl(inventory.directory, "status", "--strict")
    assert code == 0, err
    shutil.rmtree(state)
    shutil.copytree(snapshot, state)  # ...and the VM is reverted to the snapshot
    code, out, err = await satctl(inventory.directory, "status", "--strict", "--json")
    assert code == EXIT_WARNING, (out, err)
    assert "SNAPSHOT REVERT" in err
    assert "SNAPSHOT REVERT" in out
    code, _, err = await satctl(inventory.directory, "status")
    assert code == 0, "without --strict the call still succeeds..."
    assert "SNAPSHOT REVERT" in err, "...and still warns, loudly"


async def test_clone_is_flagged(running: Running, inventory: Inventory, tmp_path):
    await pair_with(running, inventory, name="original")
    clone_root = tmp_path / "clone"
    shutil.copytree(running.bridge.config.paths.root, clone_root)  # a cloned VM disk
    clock = FakeClock(time.time())
    clone = Running(wire(loopback_config(clone_root), clock=clock), None, None, clock)  # type: ignore[arg-type]
    clone.server = BridgeServer(clone.bridge, guard_memory=False)
    clone.bound = await clone.server.start()
    try:
        await pair_with(clone, inventory, name="copy")
        code, _, err = await satctl(inventory.directory, "-s", "original", "status", "--strict")
        assert code == EXIT_WARNING
        assert "CLONE" in err
        assert "copy" in err
    finally:
        await clone.server.stop(0)
        await clone.bridge.aclose()


def test_generation_bookkeeping(tmp_path):
    inv = Inventory(tmp_path)
    sat = Satellite("a", "h", 1, 2, "fp", "", "", instance_id="i1", max_generation=5)
    inv.satellites["a"] = sat
    assert check_generation(inv, sat, "i1", 7).warnings == []
    assert sat.max_generation == 7
    found = check_generation(inv, sat, "i1", 6)
    assert found.snapshot_revert
    assert sat.max_generation == 7
    # A factory reset makes a new instance: its generations start again, no alarm.
    assert check_generation(inv, sat, "i2", 1).warnings == []
    assert sat.max_generation == 1
    inv.satellites["b"] = replace(sat, name="b")
    assert check_generation(inv, sat, "i2", 2).clone_of == ["b"]
