"""Issue 20: both CLIs as one contract against a real bridge: one JSON schema per object,
satctl knowing identities like ssh, preconditions before anything changes, clear refusals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from satbridge.client import schema
from satbridge.client.inventory import Inventory
from satbridge.errors import EXIT_CODES, Kind
from tests.conftest import PYTHON, Running, loopback_config, pair_with, serve_bridge
from tests.lab.bridge import satctl

TOP = Path(__file__).resolve().parents[2]


async def satbridge(root: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        str(TOP / "bridge.py"),
        "--root",
        str(root),
        "--sandbox",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def shape(value: Any) -> Any:
    """The keys and types of a JSON value, without the values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


async def test_status_xcc_and_firewall_json_are_one_schema_in_both_clis(running: Running, inventory: Inventory):
    await pair_with(running, inventory)
    root = running.bridge.config.paths.root
    for ctl_args, bridge_args, name in (
        (("status", "--json"), ("status", "--json"), "status"),
        (("xcc", "status", "--json"), ("xcc", "status", "--json"), "xcc"),
        (("firewall", "show", "--json"), ("firewall", "show", "--json"), "firewall"),
    ):
        code, ctl_out, err = await satctl(inventory.directory, *ctl_args)
        assert code == 0, err
        code, bridge_out, err = await satbridge(root, *bridge_args)
        assert code == 0, err
        ctl, bridge = json.loads(ctl_out), json.loads(bridge_out)
        assert schema.problems(ctl, schema.SCHEMAS[name]) == [], name
        assert schema.problems(bridge, schema.SCHEMAS[name]) == [], name
        assert set(ctl) == set(bridge), name
        for key in ctl:  # key by key, the same type (lists: their items' shape when both have some)
            if isinstance(ctl[key], list) and not (ctl[key] and bridge[key]):
                continue
            assert shape(ctl[key]) == shape(bridge[key]), (name, key)
    # the very values the issue found differing
    _, ctl_out, _ = await satctl(inventory.directory, "status", "--json")
    _, bridge_out, _ = await satbridge(root, "status", "--json")
    ctl, bridge = json.loads(ctl_out), json.loads(bridge_out)
    assert ctl["firewall_revision"] == bridge["firewall_revision"] == 0  # present at 0
    assert ctl["state_generation"] == bridge["state_generation"]
    assert isinstance(ctl["uptime_seconds"], int)
    assert ctl["pairing"]["paired_at"] == bridge["pairing"]["paired_at"]
    assert ctl["pairing"]["paired_at"].endswith("Z")
    assert "dhcp_lease" in ctl["network"]
    assert "dhcp_lease" in bridge["network"]
    _, xcc_out, _ = await satctl(inventory.directory, "xcc", "status", "--json")
    assert json.loads(xcc_out)["installed"] is False  # not `{}`
    _, fw_out, _ = await satctl(inventory.directory, "firewall", "get", "--json")  # the alias
    assert json.loads(fw_out)["default_action"] == "drop"


async def test_list_and_logs_list_have_json(running: Running, inventory: Inventory):
    await pair_with(running, inventory)
    code, out, err = await satctl(inventory.directory, "list", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert schema.problems(listed, schema.SCHEMAS["satellites"]) == []
    assert [s["name"] for s in listed["satellites"]] == ["sat"]
    code, out, err = await satctl(inventory.directory, "logs", "list", "--json")
    assert code == 0, err
    assert schema.problems(json.loads(out), schema.SCHEMAS["logs"]) == []


async def test_pair_window_json_follows_the_schema(tmp_path):
    code, out, err = await satbridge(tmp_path, "pair-window", "open", "--json")
    assert code == 0, err
    assert schema.problems(json.loads(out), schema.SCHEMAS["pair-window"]) == []


async def test_a_reset_satellite_is_reported_like_ssh_and_pairing_again_replaces_it(
    running: Running, inventory: Inventory, tmp_path: Path
):
    await pair_with(running, inventory, name="old-name")
    ports = running.bound
    await running.server.stop(0)
    await running.bridge.aclose()
    # the same address, a new identity: what a factory reset makes
    config = loopback_config(tmp_path / "reset-root")
    from dataclasses import replace

    from satbridge.config import ListenAddress

    server = replace(
        config.server,
        listen=ListenAddress("127.0.0.1", ports.management),
        pairing_listen=ListenAddress("127.0.0.1", ports.pairing),
    )
    async with serve_bridge(replace(config, server=server)) as reset:
        code, out, err = await satctl(inventory.directory, "status")
        assert code == EXIT_CODES[Kind.UNAUTHENTICATED], err
        assert "REMOTE IDENTITY CHANGED" in err
        assert "satctl pair 127.0.0.1" in err
        assert len(err.strip().splitlines()) == 1, err  # no gRPC C-core log line, no raw TLS error
        assert "Handshake" not in err
        assert "Traceback" not in err

        await pair_with(reset, Inventory.load(inventory.directory), name="new-name")
        code, out, err = await satctl(inventory.directory, "list", "--json")
        listed = json.loads(out)
        assert [s["name"] for s in listed["satellites"]] == ["new-name"]
        assert listed["default"] == "new-name"
        code, out, err = await satctl(inventory.directory, "status")
        assert code == 0, err


async def test_pair_with_host_port_is_refused_naming_the_flags(running: Running, inventory: Inventory):
    code = running.bridge.pairing.open_window().code
    for host in (f"127.0.0.1:{running.bound.pairing}", f"[::1]:{running.bound.pairing}"):
        rc, _, err = await satctl(inventory.directory, "pair", host, code)
        assert rc == EXIT_CODES[Kind.INVALID_ARGUMENT], err
        assert "--pairing-port" in err
    assert running.bridge.pairing.status().window_open  # nothing was tried


async def test_commission_checks_the_package_before_pairing(running: Running, inventory: Inventory, tmp_path: Path):
    code = running.bridge.pairing.open_window().code
    for pkg in (tmp_path / "missing.tar.gz", tmp_path, Path("/dev/null")):
        rc, _, err = await satctl(
            inventory.directory,
            "commission",
            "127.0.0.1",
            code,
            "--port",
            str(running.bound.management),
            "--pairing-port",
            str(running.bound.pairing),
            "--xcc",
            str(pkg),
        )
        assert rc == EXIT_CODES[Kind.INVALID_ARGUMENT], err
        assert "--xcc" in err
        state = running.bridge.pairing.status()
        assert state.window_open  # the window is still open: nothing was paired
        assert not state.paired


async def test_no_confirm_means_for_good_in_both_clis(running: Running, inventory: Inventory, tmp_path: Path):
    await pair_with(running, inventory)
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {
                "default_action": "drop",
                "rules": [{"family": "both", "protocol": "tcp", "ports": [[8080, 8080]], "action": "accept"}],
            }
        )
    )
    code, out, err = await satctl(inventory.directory, "firewall", "set", str(rules), "--no-confirm")
    assert code == 0, err
    assert "for good" in out
    state = await running.bridge.firewall.get()
    assert state.pending_revision == 0  # nothing left to roll back
    assert len(state.rules.rules) == 1
    code, out, err = await satctl(inventory.directory, "firewall", "show", "--json")
    shown = json.loads(out)
    assert shown["revision"] == state.revision
    assert shown["pending_revision"] == 0


async def test_xcc_control_outlives_the_satellites_own_wait():
    """Red team (issue 20): `satctl xcc restart` without --timeout asked the satellite to wait its
    default 90 s for systemd, but gave up itself after 15 s (DEADLINE_EXCEEDED, exit 9, while the
    job went on). The call's deadline is the satellite's wait plus a margin."""
    from satbridge.api.v1 import xcc_pb2
    from satbridge.client.session import XCC_DEFAULT_WAIT, SatelliteClient

    deadlines: list[float] = []

    class Stub:
        def __getattr__(self, _: str) -> Any:
            async def method(request: Any, timeout: float) -> xcc_pb2.XccState:
                deadlines.append(timeout)
                return xcc_pb2.XccState()

            return method

    client = SatelliteClient.__new__(SatelliteClient)
    client.timeout, client.xcc = 15.0, Stub()  # type: ignore[assignment]
    await client.xcc_control("restart")
    await client.xcc_control("restart", wait=600)
    await client.xcc_control("restart", wait=3)
    assert deadlines[0] > XCC_DEFAULT_WAIT
    assert deadlines[1] > 600
    assert deadlines[2] >= 15.0
