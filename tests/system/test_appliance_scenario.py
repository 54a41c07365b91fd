"""The whole scenario on the appliance: the zipapp installed as satbridge.service under the
appliance's real systemd (nspawn), on a veth whose address the appliance's NetworkManager got by
DHCP, driven by satctl from the far end of that link (a lab netns, never the machine's own)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from satbridge.system.systemd import SystemdUnits
from tests.lab import packages
from tests.lab.appliance import LAB_SATELLITE, booted

pytestmark = pytest.mark.lab
TOP = Path(__file__).resolve().parents[2]
PY = sys.executable


@pytest.fixture(scope="module")
def appliance(tmp_path_factory):
    with booted("sate2e", log=tmp_path_factory.mktemp("lab") / "nspawn.log", veth=True) as lab:
        yield lab


class Satellite:
    def __init__(self, leader: int, netns: str, ctl: Path) -> None:
        self.leader = leader
        self.netns = netns
        self.ctl = ctl

    def inside(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command in the container (its mounts, network, pids)."""
        done = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-n", "-p", "--", *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode:
            raise AssertionError(f"{argv}: {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def outside(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a command at the far end of the link (the central server's seat)."""
        return subprocess.run(
            ["nsenter", f"--net=/run/netns/{self.netns}", "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=TOP,
        )

    def satctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.outside(PY, "-m", "satbridge.client", "--config-dir", str(self.ctl), *args)

    def port_open(self, port: int) -> bool:
        """A TCP connect through the link: True when accepted; False when nothing answers (the
        firewall dropped it). A refusal is neither and fails the check."""
        probe = (
            "import socket,sys\n"
            "s=socket.socket(); s.settimeout(2)\n"
            f"try: s.connect(({LAB_SATELLITE!r},{port}))\n"
            "except TimeoutError: sys.exit(3)\n"
        )
        done = self.outside(PY, "-c", probe, timeout=30)
        assert done.returncode in (0, 3), f"port {port}: {done.stderr}"
        return done.returncode == 0

    def wait_listening_inside(self, port: int) -> None:
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)"
        for _ in range(40):
            done = subprocess.run(
                ["nsenter", "-t", str(self.leader), "-n", "--", PY, "-c", probe], capture_output=True, timeout=10
            )
            if done.returncode == 0:
                return
            time.sleep(0.25)
        raise AssertionError(f"nothing listens on {port} inside")

    def wait_for_link(self) -> None:
        """The appliance's NetworkManager takes DHCP's address a moment after boot."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (
                self.outside(
                    PY, "-c", f"import socket; socket.create_connection(({LAB_SATELLITE!r}, 50052), 1)", timeout=10
                ).returncode
                == 0
            ):
                return
            time.sleep(0.25)
        raise AssertionError("the satellite never answered on its DHCP address")

    def code(self) -> str:
        """A fresh code for the window the service opened by itself (unpaired); it opens within
        a second of a start or a factory reset, so wait for it."""
        for _ in range(40):
            out = self.inside(
                "/usr/bin/python3", "/usr/lib/satbridge/satbridge.pyz", "pair-window", "show", "--json", check=False
            )
            if out.returncode == 0:
                return str(json.loads(out.stdout)["code"])
            time.sleep(0.25)
        raise AssertionError(f"no pairing window opened by itself: {out.stderr}")


async def test_the_whole_scenario(appliance, zipapp, tmp_path):
    root = appliance.root
    (root / "usr/lib/satbridge").mkdir(parents=True, exist_ok=True)
    shutil.copy(zipapp, root / "usr/lib/satbridge/satbridge.pyz")
    shutil.copy(TOP / "build/units/satbridge.service", root / "etc/systemd/system/satbridge.service")
    key = packages.trusted_key(root / "etc/satbridge", tmp_path / "pkgs")
    (root / "etc/satbridge/satbridge.toml").write_text("[update]\nhealth_gate_seconds = 2\n")
    pkgs = tmp_path / "pkgs"
    v1, v2 = (packages.good(pkgs, key, v, probe="http", bind="0.0.0.0") for v in ("1.0.0", "2.0.0"))
    v3 = packages.good(pkgs, key, "3.0.0", probe="http", bind="0.0.0.0", variant="crash")
    units = SystemdUnits(appliance.bus_address, root)
    other = None
    sat = Satellite(appliance.leader, appliance.netns, tmp_path / "ctl")
    try:
        await units.reload()
        started = time.monotonic()
        await units.run_job("start", "satbridge.service", timeout=120)  # Type=notify: READY came
        state = await units.state("satbridge.service")
        assert (state.active_state, state.sub_state) == ("active", "running"), state
        print(f"satbridge.service ready in {time.monotonic() - started:.1f} s")
        sat.wait_for_link()
        # Something else listening inside, which the firewall will have to close.
        other = subprocess.Popen(  # noqa: ASYNC220
            ["nsenter", "-t", str(appliance.leader), "-n", "--", PY, "-m", "http.server", "-b", "::", "18081"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        # 1. pair, with the code read inside
        done = sat.satctl("pair", LAB_SATELLITE, sat.code(), "--as", "central")
        assert done.returncode == 0, done.stderr
        network = json.loads(sat.satctl("status", "--json").stdout)["network"]
        assert (network["interface"], network["method"]) == ("host0", "dhcp"), network  # NM's own DHCP profile (auto)
        assert network["addresses"] == [f"{LAB_SATELLITE}/24"], network
        # 2. the first XCC install, and start
        done = sat.satctl("update", str(v1))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "COMMITTED" in done.stdout
        assert "1.0.0, active/running" in sat.satctl("xcc", "status").stdout
        # 3. firewall set and confirm (satctl confirms over a new connection). Before: the factory
        # rules (the bridge's own ports only) drop both XCC and the other listener at the link,
        # though both answer inside.
        for port in (18080, 18081):
            sat.wait_listening_inside(port)
            assert not sat.port_open(port), f"the factory firewall left {port} open"
        rules = tmp_path / "rules.json"
        rules.write_text(
            json.dumps(
                {
                    "default_action": "drop",
                    "rules": [{"protocol": "tcp", "action": "accept", "ports": [18080], "comment": "xcc"}],
                }
            )
        )
        done = sat.satctl("firewall", "set", str(rules))
        assert done.returncode == 0, done.stderr
        saved = sat.inside("iptables-legacy-save", "-t", "filter").stdout
        assert "-A SATBRIDGE-XCC -p tcp -m multiport --dports 18080 -m comment --comment xcc -j ACCEPT" in saved
        # the port check, through the link: XCC's port and the bridge's own stay open, the rest drops
        for port in (18080, 50051, 50052):
            assert sat.port_open(port), port
        assert not sat.port_open(18081), "a port the rules do not open still answers"
        # 4. update to v2; 5. a failing v3 rolls back
        assert sat.satctl("update", str(v2)).returncode == 0
        done = sat.satctl("update", str(v3))
        assert done.returncode == 8, done.stdout + done.stderr
        assert "ROLLED_BACK" in done.stdout
        assert "2.0.0, active/running" in sat.satctl("xcc", "status").stdout
        # 6. logs and the bundle
        assert "xcc/xcc.log" in sat.satctl("logs", "list").stdout
        log = tmp_path / "xcc.log"
        assert sat.satctl("logs", "get", "xcc/xcc.log", "-o", str(log)).returncode == 0
        assert "crashing on purpose" in log.read_text()
        bundle = tmp_path / "bundle.tar.gz"
        assert sat.satctl("logs", "bundle", "-o", str(bundle)).returncode == 0
        with tarfile.open(fileobj=io.BytesIO(bundle.read_bytes()), mode="r:gz") as tar:
            assert "bundle/status.json" in tar.getnames()
        # 7. disconnect
        assert sat.satctl("unpair").returncode == 0
        assert sat.satctl("status").returncode != 0, "its access ended"
        # 8. factory reset, from the console side
        done = sat.inside("/usr/bin/python3", "/usr/lib/satbridge/satbridge.pyz", "factory-reset", "--yes")
        assert "factory reset complete" in done.stdout, done.stdout + done.stderr
        assert not (root / "opt/xcc/current").exists()
        # 9. re-pair: the running service follows the new identity
        for _ in range(40):
            time.sleep(0.25)  # noqa: ASYNC251 - a step-by-step scenario; nothing else runs
            done = sat.satctl("pair", LAB_SATELLITE, sat.code(), "--as", "central", "--name", "again")
            if done.returncode == 0:
                break
        assert done.returncode == 0, done.stderr
        assert sat.satctl("-s", "again", "status").returncode == 0
    finally:
        if other is not None:
            other.kill()
            other.wait()
        journal = subprocess.run(  # noqa: ASYNC221
            ["journalctl", "-D", str(appliance.journal), "-u", "satbridge.service", "-n", "30", "--no-pager"],
            capture_output=True,
            text=True,
        )
        print(journal.stdout[-3000:])
        await units.close()
        os.sync()
