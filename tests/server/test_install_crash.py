"""kill -9 the bridge at every phase of an install, start it again: XCC ends on the old or the
new release, running, never broken. The bridge is a real process; systemd is the fake on a
private bus (this test's event loop serves it)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import pytest

from satbridge.client.inventory import Inventory
from satbridge.client.session import connect, pair
from satbridge.client.update import Updater
from satbridge.errors import SatbridgeError
from satbridge.system.releases import Releases
from tests.lab import packages
from tests.lab.bridge import Bridge

PY = sys.executable
PHASES = ["VERIFYING", "EXTRACTING", "SWITCHING", "RESTARTING", "HEALTH_CHECK"]


@pytest.mark.parametrize("phase", PHASES)
async def test_kill_9_at_every_phase(tmp_path, fake_systemd, probe_port, phase):
    root = tmp_path / "root"
    key = packages.trusted_key(root / "etc/satbridge", tmp_path)
    v1 = packages.good(tmp_path, key, "1.0.0", port=probe_port)
    # Another command than 1.0.0's (the fake systemd runs neither): the unit file must follow
    # `current` back whenever the install is rolled back (red team, issue 14).
    v2 = packages.good(tmp_path, key, "2.0.0", port=probe_port, variant="bad-health")
    unit_file = root / "etc/systemd/system/xcc.service"
    (root / "etc/satbridge/satbridge.toml").write_text("[update]\nhealth_gate_seconds = 0.3\n")
    bridge = Bridge(root, fake_systemd.address)
    inv = Inventory.load(tmp_path / "ctl")
    try:
        await bridge.start()
        window = await asyncio.create_subprocess_exec(
            PY, "-m", "satbridge", "--root", str(root), "pair-window", "open", "--json", stdout=asyncio.subprocess.PIPE
        )
        code = json.loads((await window.communicate())[0])["code"]
        sat = await pair(
            "127.0.0.1", code, inventory=inv, server_name="central", port=bridge.mgmt, pairing_port=bridge.pairing
        )
        async with connect(sat, inv) as client:
            updater = Updater(client.channel)
            assert (await updater.install(await updater.upload(v1, progress=False))).version == "1.0.0"
        await bridge.stop()
        unit_v1 = unit_file.read_text()

        await bridge.start(failpoint=f"install:{phase}")
        async with connect(sat, inv) as client:
            updater = Updater(client.channel)
            upload_id = await updater.upload(v2, progress=False)
            with pytest.raises(SatbridgeError):
                await updater.install(upload_id)
        assert await bridge.proc.wait() == -signal.SIGKILL, "the bridge died at the failpoint"

        restarts = fake_systemd.behaviour.calls.count(("RestartUnit", "xcc.service"))
        await bridge.start()  # recovery runs at start
        releases = Releases(root / "opt/xcc")
        assert releases.current() in ("1.0.0", "2.0.0")
        assert (root / "opt/xcc/releases" / releases.current() / "bin/xcc").is_file(), "current is whole"
        assert not list((root / "opt/xcc/releases").glob("*.tmp")), "no half extraction left"
        assert not (root / "var/lib/satbridge/install.json").exists(), "the journal is closed"
        if releases.current() == "1.0.0":
            assert unit_file.read_text() == unit_v1, "1.0.0 runs with the unit it was installed with"
        if phase in ("SWITCHING", "RESTARTING", "HEALTH_CHECK"):
            assert fake_systemd.behaviour.calls.count(("RestartUnit", "xcc.service")) > restarts, "XCC restarted"
        async with connect(sat, inv) as client:
            state = await client.xcc_state()
            assert state.active_state == "active"
            assert state.version == releases.current()
            # and the satellite takes the update again, cleanly
            updater = Updater(client.channel)
            final = await updater.install(await updater.upload(v2, progress=False))
            assert (final.version, final.phase) == ("2.0.0", final.COMMITTED)
            assert "--fail-health" in unit_file.read_text()
    finally:
        await bridge.stop()
