"""Issue 20, the rest: `--json` on every command of both CLIs that changes things or prints
data, each one line holding one object of the shared schema (client/schema.py); what
`firewall show --json` prints is what `firewall set` reads; one duration grammar; the exit
code of "nothing to confirm"; `satctl version`."""

from __future__ import annotations

import json
from pathlib import Path

from satbridge.client import schema
from satbridge.client.inventory import Inventory
from satbridge.errors import EXIT_CODES, Kind
from tests.client.test_contract import satbridge
from tests.conftest import Running, pair_with
from tests.lab.bridge import satctl


def one_object(out: str, name: str) -> dict[str, object]:
    """stdout of a `--json` command: exactly one line, one object of schema `name`."""
    lines = out.splitlines()
    assert len(lines) == 1, out
    document = json.loads(lines[0])
    assert schema.problems(document, schema.SCHEMAS[name]) == [], (name, document)
    return document  # type: ignore[no-any-return]


RULES = {
    "default_action": "drop",
    "rules": [{"family": "both", "protocol": "tcp", "ports": [[8080, 8080]], "action": "accept", "comment": "web"}],
}


async def test_pair_version_and_unpair_print_one_object(running: Running, inventory: Inventory):
    code = running.bridge.pairing.open_window().code
    ports = ["--port", str(running.bound.management), "--pairing-port", str(running.bound.pairing)]
    rc, out, err = await satctl(inventory.directory, "pair", "127.0.0.1", code, *ports, "--name", "s1", "--json")
    assert rc == 0, err
    paired = one_object(out, "satellite")
    assert (paired["name"], paired["host"], paired["default"]) == ("s1", "127.0.0.1", True)

    rc, out, err = await satctl(inventory.directory, "version", "--json")
    assert rc == 0, err
    version = one_object(out, "version")
    rc, bridge_out, err = await satbridge(running.bridge.config.paths.root, "version", "--json")
    assert rc == 0, err
    assert one_object(bridge_out, "version") == version  # the same object from either side
    rc, out, err = await satctl(inventory.directory, "version")
    assert rc == 0, err
    assert out.splitlines() == [f"satbridge {version['bridge_version']}", "xcc not installed"]

    rc, out, err = await satctl(inventory.directory, "unpair", "--json")
    assert rc == 0, err
    unpaired = one_object(out, "unpair")
    assert (unpaired["name"], unpaired["default"]) == ("s1", "")
    rc, out, err = await satbridge(running.bridge.config.paths.root, "disconnect", "--json")
    assert rc == 0, err
    assert one_object(out, "disconnect")["was_paired"] is False


async def test_firewall_show_json_is_accepted_by_set_and_every_firewall_command_has_json(
    running: Running, inventory: Inventory, tmp_path: Path
):
    await pair_with(running, inventory)
    ctl = inventory.directory
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    rc, out, err = await satctl(ctl, "firewall", "set", str(rules), "--json")
    assert rc == 0, err
    applied = one_object(out, "firewall")
    assert applied["pending_revision"] == 0  # confirmed over a new connection
    assert applied["rules"] == [{**RULES["rules"][0], "sources": []}]  # type: ignore[dict-item]

    # the round trip: what show --json printed (either tool) goes back in unchanged
    rc, out, err = await satctl(ctl, "firewall", "show", "--json")
    assert rc == 0, err
    shown = tmp_path / "shown.json"
    shown.write_text(out)
    rc, out, err = await satctl(ctl, "firewall", "set", str(shown), "--json")
    assert rc == 0, err
    again = one_object(out, "firewall")
    assert again["revision"] == applied["revision"]  # the same rules: no new revision
    assert again["rules"] == applied["rules"]
    rc, bridge_out, err = await satbridge(running.bridge.config.paths.root, "firewall", "show", "--json")
    assert rc == 0, err
    shown.write_text(bridge_out)
    rc, out, err = await satctl(ctl, "firewall", "set", str(shown), "--no-confirm", "--json")
    assert rc == 0, err
    assert one_object(out, "firewall")["rules"] == applied["rules"]
    # a document of another version, or with a key no firewall document has, is refused by name
    for changed, field in (({"schema_version": 2}, "schema_version"), ({"extra": 1}, "extra")):
        shown.write_text(json.dumps({**json.loads(bridge_out), **changed}))
        rc, out, err = await satctl(ctl, "firewall", "set", str(shown))
        assert rc == EXIT_CODES[Kind.INVALID_ARGUMENT], err
        assert field in err

    # --leave-pending with a decimal --confirm-timeout: the satellite counts whole seconds, up
    rc, out, err = await satctl(
        ctl, "firewall", "set", str(rules), "--leave-pending", "--confirm-timeout", "2.5", "--json"
    )
    assert rc == 0, err
    assert one_object(out, "firewall")["revision"] == applied["revision"]  # unchanged: nothing pending
    changed_rules = tmp_path / "changed.json"
    changed_rules.write_text(json.dumps({**RULES, "default_action": "reject"}))
    rc, out, err = await satctl(
        ctl, "firewall", "set", str(changed_rules), "--leave-pending", "--confirm-timeout", "2.5", "--json"
    )
    assert rc == 0, err
    pending = one_object(out, "firewall")
    assert pending["pending_revision"]
    assert 2 < pending["rollback_in_seconds"] <= 3  # type: ignore[operator]
    rc, out, err = await satctl(ctl, "firewall", "confirm", "--json")
    assert rc == 0, err
    confirmed = one_object(out, "firewall")
    assert (confirmed["revision"], confirmed["pending_revision"]) == (pending["pending_revision"], 0)

    # nothing pending: a failed precondition (3), as the README's table says
    rc, out, err = await satctl(ctl, "firewall", "confirm")
    assert rc == EXIT_CODES[Kind.FAILED_PRECONDITION] == 3, err
    assert "nothing is pending" in err
    assert len(err.strip().splitlines()) == 1

    rc, out, err = await satctl(ctl, "firewall", "set", str(rules), "--no-confirm", "--leave-pending")
    assert rc == EXIT_CODES[Kind.INVALID_ARGUMENT], err
    assert "--no-confirm" in err
    rc, out, err = await satctl(ctl, "firewall", "reset", "--json")
    assert rc == 0, err
    one_object(out, "firewall")


async def test_satbridge_pair_window_network_disconnect_and_version_json(tmp_path: Path):
    root = tmp_path / "root"
    rc, out, err = await satbridge(root, "pair-window", "open", "--json")
    assert rc == 0, err
    assert one_object(out, "pair-window")["open"] is True
    rc, out, err = await satbridge(root, "pair-window", "close", "--json")
    assert rc == 0, err
    closed = one_object(out, "pair-window")
    assert (closed["open"], closed["code"], closed["expires_at"]) == (False, "", None)

    # method: the commands' words, dhcp and static, never NetworkManager's auto and manual
    rc, out, err = await satbridge(root, "network", "static", "--address", "192.0.2.10/24", "--json")
    assert rc == 0, err
    static = one_object(out, "network")
    assert err == ""  # the audit line goes to the audit log; stderr is for warnings and errors
    assert static["method"] == "static"
    assert static["rollback_in_seconds"] == 30
    rc, out, err = await satbridge(root, "network", "confirm", "--json")
    assert rc == 0, err
    assert one_object(out, "network")["rollback_in_seconds"] == 0
    rc, out, err = await satbridge(root, "network", "dhcp", "--confirm-timeout", "2.5", "--json")
    assert rc == 0, err
    dhcp = one_object(out, "network")
    assert (dhcp["method"], dhcp["rollback_in_seconds"]) == ("dhcp", 3)
    rc, out, err = await satbridge(root, "network", "revert", "--json")
    assert rc == 0, err
    assert one_object(out, "network")["method"] == "static"
    rc, out, err = await satbridge(root, "status", "--json")
    assert one_object(out, "status")["network"]["method"] == "static"  # type: ignore[index]
    rc, out, err = await satbridge(root, "status")
    assert "sandbox0 static" in out
    rc, out, err = await satbridge(root, "network", "hostname", "sat-2", "--json")
    assert rc == 0, err
    assert one_object(out, "network")["hostname"] == "sat-2"

    rc, out, err = await satbridge(root, "disconnect", "--json")
    assert rc == 0, err
    assert one_object(out, "disconnect") == {
        "schema_version": 1,
        "was_paired": False,
        "xcc_stopped": False,
        "problem": "",
    }
    rc, out, err = await satbridge(root, "version", "--json")
    assert rc == 0, err
    assert one_object(out, "version")["xcc_version"] == ""
    # satbridge's xcc --timeout takes 0.5 as satctl's does
    rc, out, err = await satbridge(root, "xcc", "status", "--timeout", "0.5", "--json")
    assert rc == 0, err
    one_object(out, "xcc")


def test_network_method_is_dhcp_or_static_whatever_the_wire_says():
    from satbridge.api.v1 import system_pb2

    for wire, word in (("auto", "dhcp"), ("manual", "static"), ("", ""), ("disabled", "disabled")):
        document = schema.network_document(system_pb2.NetworkState(method=wire))
        assert document["method"] == word


def test_the_readme_documents_every_object_and_its_keys():
    """The README's JSON table names each object of SCHEMAS, with its top-level keys."""
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `([a-z-]+)` \| [^|]*(?:\\\|[^|]*)*\| (.*) \|$", readme, re.MULTILINE)
    }
    assert set(rows) == set(schema.SCHEMAS), set(rows) ^ set(schema.SCHEMAS)
    for name, keys in rows.items():
        for key in schema.SCHEMAS[name]:
            if key != "schema_version":
                assert re.search(rf"\b{key}\b", keys), (name, key)


async def test_factory_reset_and_init_config_json(tmp_path: Path):
    root = tmp_path / "root"
    rc, out, err = await satbridge(root, "init-config", "--json")
    assert rc == 0, err
    assert one_object(out, "init-config")["written"] is True
    rc, out, err = await satbridge(root, "init-config", "--json")
    assert one_object(out, "init-config")["written"] is False
    rc, out, err = await satbridge(root, "factory-reset", "--yes", "--json")
    assert rc == 0, err
    done = one_object(out, "factory-reset")
    assert done["failed"] == 0
    assert done["steps"]


async def test_satbridge_version_json_needs_no_systemd(tmp_path: Path, monkeypatch):
    """Found running the README in the sandbox: a first install rolled back without a system bus
    left xcc.service behind, and `satbridge version --json` then asked systemd, failed with exit 4
    and printed nothing, while `satctl version --json` (GetVersions: the `current` release) answered.
    Both now read the release `current` names."""
    root = tmp_path / "root"
    rc, out, err = await satbridge(root, "init-config", "--json")
    assert rc == 0, err
    unit = root / "etc/systemd/system/xcc.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text("[Service]\nExecStart=/opt/xcc/current/bin/xcc\n")
    (root / "opt/xcc/releases/2.4.1").mkdir(parents=True)
    (root / "opt/xcc/current").symlink_to("releases/2.4.1")
    monkeypatch.setenv("SATBRIDGE_DBUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    rc, out, err = await satbridge(root, "version", "--json")
    assert rc == 0, err
    assert one_object(out, "version")["xcc_version"] == "2.4.1"
    assert err == ""
