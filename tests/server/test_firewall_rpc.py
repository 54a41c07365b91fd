"""Firewall over gRPC in sandbox mode (the kernel part is proven in tests/system)."""

from __future__ import annotations

import json
import subprocess

from satbridge.api.v1 import firewall_pb2
from satbridge.client.session import connect
from tests.conftest import PYTHON, pair_with
from tests.lab.bridge import satctl_pair, serving


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
    # who set it: the paired server's name in the audit log (issue 19, finding 8)
    entries = [json.loads(line) for line in running.bridge.config.paths.audit_log.read_text().splitlines()]
    who = {e["event"]: e.get("by") for e in entries if e["event"].startswith("firewall-")}
    assert who == {"firewall-set": "central (Set RPC)", "firewall-confirmed": "central (Confirm RPC)"}


def test_satctl_firewall_set_confirms_over_a_new_connection(tmp_path):
    """The CLI path, against a bridge process (sandbox) on loopback."""
    root, ctl = tmp_path / "root", tmp_path / "ctl"
    satctl = [PYTHON, "-m", "satbridge.client", "--config-dir", str(ctl)]
    with serving(root) as bridge:
        satctl_pair(bridge, ctl)
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
