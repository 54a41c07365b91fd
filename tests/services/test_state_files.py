"""State files never brick (issue 18, case 6): each state file, damaged each way in turn, and
the status still answers, the console opens, and a factory reset completes."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from satbridge.errors import FailedPrecondition
from satbridge.menu.app import MenuApp
from satbridge.menu.views import render_text
from satbridge.system.files import DirStore, load_json
from satbridge.wiring import wire
from tests.conftest import loopback_config

SOUND = {
    "state.json": {"instance_id": "ab" * 16, "generation": 7},
    "trust.json": {"peer_fingerprint": "cd" * 32, "peer_name": "pbx", "paired_at": 1.5},
    "pairing-window.json": {"key": "ef" * 32, "opened_at": 1.0, "expires_at": 4e9, "attempts_left": 5},
    "firewall.json": {"revision": 0, "rules": None, "pending": None, "last_revision": 0},
    "network-pending.json": {"checkpoint": "sandbox-checkpoint-1", "deadline": 4e9, "what": "dhcp"},
    "install.json": {"phase": "EXTRACTING", "version": "1.0.0", "previous": ""},
    "sandbox-network.json": {
        "current": {"method": "auto", "addresses": [], "gateway": "", "dns": [], "search": []},
        "hostname": "satellite",
    },
    "sandbox-firewall.json": {"v4": [], "v6": []},
}
REFUSED = {"install.json"}  # no safe default: named in FAILED_PRECONDITION instead


def _damage(path, how: str) -> None:
    sound = json.dumps(SOUND[path.name]).encode()
    if how == "directory":
        path.mkdir()
        (path / "x").write_text("x")
        return
    path.write_bytes(
        {
            "empty": b"",
            "truncated": sound[: len(sound) // 2],
            "wrong-type": b'["a", "list"]',
            "wrong-field-type": json.dumps(dict.fromkeys(SOUND[path.name], 5)).encode(),
            "binary": os.urandom(64) + b"\xff\xfe",
            "broken": b"{broken",
        }[how]
    )


DAMAGES = ["empty", "truncated", "wrong-type", "wrong-field-type", "binary", "broken", "directory"]


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", sorted(SOUND))
async def test_a_damaged_state_file_never_bricks(tmp_path, name, how):
    root = tmp_path / "root"
    config = loopback_config(root)
    await wire(config).aclose()  # delivered and started once
    state_dir = config.paths.state_dir
    target = state_dir / name
    if target.exists():
        target.unlink()
    _damage(target, how)

    bridge = wire(config)  # what the bridge service and the console do at start
    try:
        status = await bridge.status.get()
        assert status.bridge_version
        assert status.hostname

        menu = MenuApp(bridge)
        try:
            menu.status()
            for _ in range(100):
                await asyncio.sleep(0.02)
                if not menu.tasks:
                    break
            screen = render_text(menu.top)
            assert "Hostname:" in screen, screen
            assert "Unexpected error" not in screen, screen
        finally:
            for task in list(menu.tasks):
                task.cancel()

        steps = [step async for step in bridge.factory_reset.run(by="test")]
        assert all(step.done for step in steps), [(s.name, s.detail) for s in steps if not s.done]
        status = await bridge.status.get()
        assert status.instance_id
        assert not status.pairing.paired
    finally:
        await bridge.aclose()

    kept = [p.name for p in state_dir.iterdir() if p.name.startswith(f"{name}.damaged-")]
    audit = config.paths.audit_log.read_text()
    if name in REFUSED:
        assert not kept  # left for the admin; the factory reset removed it
    else:
        assert kept, "the damaged file is kept for support"
        assert '"state-file-damaged"' in audit or "state-file-damaged" in audit
        assert name in audit


def test_a_refused_file_names_itself_and_the_fix(tmp_path):
    store = DirStore(tmp_path)
    (tmp_path / "install.json").write_text("{broken")
    with pytest.raises(FailedPrecondition) as exc:
        store.read_json("install.json", dict, rebuild=False, fix="check /opt/xcc/current")
    assert "install.json" in str(exc.value)
    assert "check /opt/xcc/current" in str(exc.value)
    assert (tmp_path / "install.json").read_text() == "{broken"


def test_the_loader_sets_aside_and_tells(tmp_path):
    told = []
    path = tmp_path / "state.json"
    path.write_bytes(b"\xff\x00")
    assert load_json(path, dict, on_damaged=lambda *a: told.append(a)) is None
    assert not path.exists()
    ((name, kept, problem),) = told
    assert name == "state.json"
    assert kept.startswith(str(path) + ".damaged-")
    assert "UTF-8" in problem
    assert load_json(path, dict) is None  # missing is not damage
