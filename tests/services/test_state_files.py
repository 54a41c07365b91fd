"""State files never brick (issue 18, case 6): each state file, damaged each way in turn, and
the status still answers, the console opens, and a factory reset completes."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import pathlib
import stat
import threading
import time

import pytest

from satbridge.errors import FailedPrecondition, Unavailable
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
    if how == "fifo":
        os.mkfifo(path)
        return
    if how == "symlink":
        elsewhere = path.with_name(f"elsewhere-{path.name}")
        elsewhere.write_bytes(sound)
        path.symlink_to(elsewhere)
        return
    path.write_bytes(
        {
            "empty": b"",
            "truncated": sound[: len(sound) // 2],
            "wrong-type": b'["a", "list"]',
            "wrong-field-type": json.dumps(dict.fromkeys(SOUND[path.name], 5)).encode(),
            "binary": os.urandom(64) + b"\xff\xfe",
            "broken": b"{broken",
            "empty-object": b"{}",
            # every value a number no caller can use: JSON's NaN, one that overflows a float
            # (reads as inf), one far out of range
            "nan": b"{" + b", ".join(b'"%s": NaN' % k.encode() for k in SOUND[path.name]) + b"}",
            "overflow": b"{" + b", ".join(b'"%s": 1e309' % k.encode() for k in SOUND[path.name]) + b"}",
            "negative-huge": json.dumps(dict.fromkeys(SOUND[path.name], -1e300)).encode(),
        }[how]
    )


DAMAGES = [
    "empty",
    "truncated",
    "wrong-type",
    "wrong-field-type",
    "binary",
    "broken",
    "directory",
    "fifo",
    "symlink",
    "empty-object",
    "nan",
    "overflow",
    "negative-huge",
]


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
            menu.open("status")
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


NUMBERS = [
    (name, key, bad)
    for name, sound in sorted(SOUND.items())
    for key, value in sound.items()
    if type(value) in (int, float)
    for bad in ("NaN", "Infinity", "1e309", "-1e300", "1e300", "-1", "true", '"5"')
]


@pytest.mark.parametrize(("name", "key", "bad"), NUMBERS)
async def test_a_number_out_of_its_range_is_damage(tmp_path, name, key, bad):
    """Red team 18, findings 1 and 3: one number the callers cannot use (a time stamp past year
    9999, NaN, a negative revision) in an otherwise sound file. The schema refuses it: set
    aside and audited, and status and a factory reset work."""
    root = tmp_path / "root"
    config = loopback_config(root)
    await wire(config).aclose()
    target = config.paths.state_dir / name
    text = json.dumps({k: "@@" if k == key else v for k, v in SOUND[name].items()})
    target.write_text(text.replace('"@@"', bad))
    bridge = wire(config)
    try:
        status = await bridge.status.get()
        assert not [w for w in status.warnings if "unexpected" in w], status.warnings
        steps = [step async for step in bridge.factory_reset.run(by="test")]
        assert all(step.done for step in steps), [(s.name, s.detail) for s in steps if not s.done]
    finally:
        await bridge.aclose()
    assert any(p.name.startswith(f"{name}.damaged-") for p in config.paths.state_dir.iterdir())
    assert name in config.paths.audit_log.read_text()


@pytest.mark.parametrize("name", ["trust.json", "firewall.json", "pairing-window.json", "sandbox-network.json"])
async def test_a_read_only_command_reports_damage_and_moves_nothing(tmp_path, name):
    """Red team 18, finding 5: `satbridge status` must not set trust.json aside (that unpairs
    the satellite). A read-only command reports the damage as a warning naming the file and
    leaves it; the service (or a command that writes) repairs."""
    root = tmp_path / "root"
    config = loopback_config(root)
    await wire(config).aclose()
    state_dir = config.paths.state_dir
    (state_dir / name).write_text("{}")
    before = sorted(p.name for p in state_dir.iterdir())
    audit_before = config.paths.audit_log.read_text() if config.paths.audit_log.exists() else ""
    bridge = wire(config, read_only=True)
    try:
        status = await bridge.status.get()
    finally:
        await bridge.aclose()
    assert any(name in w and "damaged" in w for w in status.warnings), status.warnings
    assert sorted(p.name for p in state_dir.iterdir()) == before
    assert (state_dir / name).read_text() == "{}"
    after = config.paths.audit_log.read_text() if config.paths.audit_log.exists() else ""
    assert after == audit_before


def test_an_unreadable_file_is_not_damage(tmp_path, monkeypatch):
    """Red team 18, finding 5: EACCES (a user who is not root) is reported, naming the file, and
    nothing changes; before, trust.json was renamed away. (The tests run as root, which EACCES
    does not stop, so the open is made to fail as it does for a user.)"""
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(SOUND["trust.json"]))
    real_open = os.open

    def denied(file, flags, *args, **kwargs):
        if os.fspath(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    monkeypatch.setattr("builtins.open", lambda file, *a, **k: denied(file, os.O_RDONLY))
    told = []
    with pytest.raises(FailedPrecondition) as exc:
        load_json(path, dict, on_damaged=lambda *a: told.append(a))
    assert "trust.json" in str(exc.value)
    assert "Permission denied" in str(exc.value)
    monkeypatch.undo()
    assert not told
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trust.json"]


def test_a_fifo_swapped_in_after_a_check_never_blocks_the_loader(tmp_path, monkeypatch):
    """Red team 18, finding 6: a FIFO put in a state file's place between a check of the path
    and its open used to hang the loader (open without O_NONBLOCK). Here the swap happens
    inside any check of the path; the loader must still answer at once: it opens without
    blocking and checks what it opened."""
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(SOUND["trust.json"]))
    real_is_file = pathlib.Path.is_file

    def swap_after_check(self):
        answer = real_is_file(self)
        if self == path and not stat.S_ISFIFO(os.lstat(path).st_mode):
            path.unlink()
            os.mkfifo(path)
        return answer

    monkeypatch.setattr(pathlib.Path, "is_file", swap_after_check)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(load_json(path, dict)), daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # let the stuck open go, so the test process ends
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
        pytest.fail("the loader blocked on a FIFO swapped in after its check")
    assert result


def test_the_loader_never_opens_a_fifo_for_long(tmp_path):
    path = tmp_path / "trust.json"
    os.mkfifo(path)
    began = time.monotonic()
    assert load_json(path, dict) is None
    assert time.monotonic() - began < 1
    assert not path.exists()


@pytest.mark.parametrize("which", ["identity.key", "identity.crt"])
@pytest.mark.parametrize("how", ["directory", "fifo", "huge"])
async def test_a_damaged_identity_is_named_and_a_factory_reset_replaces_it(tmp_path, which, how):
    """Red team 18, finding 2: identity.key or identity.crt as a directory gave a traceback in
    `pair-window show` and `factory-reset`, as a FIFO it hung both."""
    root = tmp_path / "root"
    config = loopback_config(root)
    await wire(config).aclose()
    target = config.paths.state_dir / which
    target.unlink()
    if how == "directory":
        target.mkdir()
    elif how == "fifo":
        os.mkfifo(target)
    else:
        target.write_bytes(b"x" * (1 << 20))
    bridge = wire(config)  # must not fail: a factory reset has to run from here
    try:
        with pytest.raises(FailedPrecondition) as exc:
            await asyncio.wait_for(asyncio.to_thread(bridge.pairing.open_window), 5)
        assert which in str(exc.value)
        assert "factory-reset" in str(exc.value)
        steps = [step async for step in bridge.factory_reset.run(by="test")]
        assert all(step.done for step in steps), [(s.name, s.detail) for s in steps if not s.done]
        assert bridge.pairing.open_window().code
    finally:
        await bridge.aclose()


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EIO])
@pytest.mark.parametrize("where", ["open", "read"])
def test_lack_of_descriptors_or_memory_is_not_damage(tmp_path, monkeypatch, code, where):
    """Issue 16: an open that fails for want of descriptors (a flood), memory or a working disk
    says nothing about the file: Unavailable, the file stays where it is, nothing is audited."""
    path = tmp_path / "state.json"
    path.write_text('{"a": 1}')
    real = getattr(os, where)

    def failing(*args, **kwargs):
        if where == "read" or args[0] == path:
            raise OSError(code, os.strerror(code))
        return real(*args, **kwargs)

    monkeypatch.setattr(os, where, failing)
    damaged: list[tuple[str, str, str]] = []
    with pytest.raises(Unavailable):
        load_json(path, dict, on_damaged=lambda *a: damaged.append(a))
    monkeypatch.undo()
    assert path.read_text() == '{"a": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert not damaged
