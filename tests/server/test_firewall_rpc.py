"""Firewall over gRPC in sandbox mode (the kernel part is proven in tests/system)."""

from __future__ import annotations

import json
import subprocess

from satbridge.api.v1 import firewall_pb2
from satbridge.client.session import connect
from tests.conftest import PYTHON, pair_with


async def test_set_confirm_get_and_status(running, inventory):
    sat = await pair_with(running, inventory)
    rules = firewall_pb2.FirewallRuleSet(
        rules=[
            firewall_pb2.FirewallRule(
                family=firewall_pb2.BOTH,
                protocol=firewall_pb2.TCP,
                action=firewall_pb2.ACCEPT,
                ports=[firewall_pb2.PortRange(first=8443)],
            )
        ],
        default_action=firewall_pb2.REJECT,
    )
    async with connect(sat, inventory) as client:
        pending = await client.firewall_call(
            "Set", firewall_pb2.SetFirewallRequest(rules=rules, confirm_timeout_seconds=60)
        )
        assert pending.pending_revision == 1
        assert 0 < pending.rollback_in_seconds <= 60
    async with connect(sat, inventory) as fresh:
        done = await fresh.firewall_call("Confirm", firewall_pb2.ConfirmFirewallRequest(revision=1))
        assert done.revision == 1
        assert done.rules.rules[0].ports[0].last == 8443, "a single port comes back as first == last"
        status = await fresh.status()
    assert status.firewall_revision == 1
    assert any("sandbox" in w for w in status.warnings)


def test_satctl_firewall_set_confirms_over_a_new_connection(tmp_path):
    """The CLI path, against a bridge process (sandbox) on loopback."""
    import socket
    import time

    def free() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    root, ctl = tmp_path / "root", tmp_path / "ctl"
    mgmt, pairing = free(), free()
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "satbridge",
            "--root",
            str(root),
            "--sandbox",
            "--serve",
            "--listen",
            f"127.0.0.1:{mgmt}",
            "--pairing-listen",
            f"127.0.0.1:{pairing}",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", pairing), 1).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        code = json.loads(
            subprocess.run(
                [PYTHON, "-m", "satbridge", "--root", str(root), "pair-window", "open", "--json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["code"]
        satctl = [PYTHON, "-m", "satbridge.client", "--config-dir", str(ctl)]
        subprocess.run(
            [*satctl, "pair", "127.0.0.1", code, "--port", str(mgmt), "--pairing-port", str(pairing)],
            check=True,
            capture_output=True,
        )
        rules = tmp_path / "rules.json"
        rules.write_text(
            json.dumps({"default_action": "drop", "rules": [{"protocol": "udp", "action": "accept", "ports": [5060]}]})
        )
        done = subprocess.run([*satctl, "firewall", "set", str(rules)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "confirmed over a new connection" in done.stdout
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"rules": [{"protocol": "udp", "action": "accept", "ports": [0]}]}))
        refused = subprocess.run([*satctl, "firewall", "set", str(bad)], capture_output=True, text=True)
        assert refused.returncode == 2
        assert "rules[0].ports[0]" in refused.stderr
        shown = subprocess.run(
            [PYTHON, "-m", "satbridge", "--root", str(root), "--sandbox", "firewall", "show", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(shown.stdout)["revision"] == 1
    finally:
        server.terminate()
        server.wait(timeout=20)
