"""satctl update / sync / commission as an operator runs them, against a bridge process."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import grpc
import pytest

from tests.lab import packages
from tests.lab.bridge import Bridge, satctl

PY = sys.executable


async def test_commission_update_rerun_sync_and_rollback(tmp_path, fake_systemd, probe_port):
    root, ctl = tmp_path / "root", tmp_path / "ctl"
    key = packages.trusted_key(root / "etc/satbridge", tmp_path)
    (root / "etc/satbridge/satbridge.toml").write_text("[update]\nhealth_gate_seconds = 0.3\n")
    v1 = packages.good(tmp_path, key, "1.0.0", port=probe_port)
    v2 = packages.good(tmp_path, key, "2.0.0", port=probe_port)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    v3 = packages.good(tmp_path, key, "3.0.0", port=dead_port, variant="bad-health")
    bridge = Bridge(root, fake_systemd.address)
    try:
        await bridge.start()
        window = await asyncio.create_subprocess_exec(
            PY, "-m", "satbridge", "--root", str(root), "pair-window", "open", "--json", stdout=asyncio.subprocess.PIPE
        )
        code = json.loads((await window.communicate())[0])["code"]
        ports = ["--port", str(bridge.mgmt), "--pairing-port", str(bridge.pairing)]
        rc, out, err = await satctl(ctl, "commission", "127.0.0.1", code, "--xcc", str(v1), *ports)
        assert rc == 0, err
        assert "COMMITTED" in out
        rc, out, err = await satctl(ctl, "xcc", "status")
        assert "1.0.0, active/running" in out
        rc, out, err = await satctl(ctl, "update", str(v2))
        assert rc == 0, err
        assert [line.split()[0] for line in out.splitlines()] == [
            "VERIFYING",
            "EXTRACTING",
            "SWITCHING",
            "RESTARTING",
            "HEALTH_CHECK",
            "COMMITTED",
        ]
        rc, out, _ = await satctl(ctl, "update", str(v2))
        assert (rc, out.strip()) == (0, "2.0.0 is already running; nothing to do"), "re-running is harmless"
        rc, out, _ = await satctl(ctl, "sync", str(v2))
        assert (rc, out.strip()) == (0, "up to date: 2.0.0 is running")
        rc, out, err = await satctl(ctl, "update", str(v3))
        assert rc == 8, (out, err)
        assert "ROLLED_BACK" in out
        assert "rolled back" in err
        assert "health probe" in err
        rc, out, _ = await satctl(ctl, "xcc", "status")
        assert "2.0.0, active/running" in out
        rc, out, err = await satctl(ctl, "update", str(tmp_path / "missing.tar.gz"))
        assert rc == 2
        assert "PKG" in err
    finally:
        await bridge.stop()


async def test_two_operators_updating_at_once_get_one_install_and_a_clear_answer(tmp_path, fake_systemd, probe_port):
    """Issue 14, case 3: two `satctl update PKG` of the same package at the same moment."""
    root, ctl = tmp_path / "root", tmp_path / "ctl"
    key = packages.trusted_key(root / "etc/satbridge", tmp_path)
    (root / "etc/satbridge/satbridge.toml").write_text("[update]\nhealth_gate_seconds = 0.3\n")
    bridge = Bridge(root, fake_systemd.address)
    try:
        await bridge.start()
        window = await asyncio.create_subprocess_exec(
            PY, "-m", "satbridge", "--root", str(root), "pair-window", "open", "--json", stdout=asyncio.subprocess.PIPE
        )
        code = json.loads((await window.communicate())[0])["code"]
        ports = ["--port", str(bridge.mgmt), "--pairing-port", str(bridge.pairing)]
        rc, _, err = await satctl(ctl, "pair", "127.0.0.1", code, *ports)
        assert rc == 0, err
        for version in ("1.0.0", "1.1.0", "1.2.0"):
            pkg = packages.good(tmp_path, key, version, port=probe_port)
            results = await asyncio.gather(satctl(ctl, "update", str(pkg)), satctl(ctl, "update", str(pkg)))
            committed = [r for r in results if r[0] == 0 and "COMMITTED" in r[1]]
            assert len(committed) == 1, results
            (rc, out, err) = next(r for r in results if r is not committed[0])
            assert "INTERNAL" not in out + err, (out, err)
            assert "Traceback" not in err
            assert "no chunk" not in err
            assert (rc == 0 and "nothing to do" in out) or any(
                words in err for words in ("already installed", "already running", "being installed", "still running")
            ), (rc, out, err)
            rc, out, _ = await satctl(ctl, "xcc", "status")
            assert f"{version}, active/running" in out
    finally:
        await bridge.stop()


async def test_one_stream_per_upload(running, inventory, tmp_path):
    from satbridge.api.v1 import update_pb2, update_pb2_grpc
    from satbridge.client.session import connect
    from satbridge.client.update import send_stream
    from tests.conftest import pair_with

    sat = await pair_with(running, inventory)
    async with connect(sat, inventory) as client:
        stub = update_pb2_grpc.UpdateStub(client.channel)
        begun = await stub.BeginUpload(
            update_pb2.BeginUploadRequest(name="xcc", version="1.0.0", size=10, sha256="d" * 64)
        )
        hold = asyncio.Event()

        async def slow():
            yield update_pb2.UploadChunk(upload_id=begun.upload_id, offset=0, data=b"12345")
            await hold.wait()

        first = asyncio.create_task(send_stream(stub.Upload(), slow()))
        await asyncio.sleep(0.3)

        async def second_stream():
            yield update_pb2.UploadChunk(upload_id=begun.upload_id, offset=5, data=b"67890")

        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await send_stream(stub.Upload(), second_stream())
        assert exc.value.code() == grpc.StatusCode.ABORTED
        assert "another stream" in exc.value.details()
        hold.set()
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)


def test_stale_partial_uploads_are_collected(tmp_path):
    import os
    import time

    from satbridge.system.staging import Staging

    staging = Staging(tmp_path)
    staging.begin("old", {"size": 3})
    staging.begin("new", {"size": 3})
    for name in ("old", "new"):
        (tmp_path / f"{name}.part").write_bytes(b"x")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(tmp_path / "old.part", (day_ago, day_ago))
    assert staging.collect_stale(24 * 3600) == ["old"]
    assert not (tmp_path / "old.meta.json").exists()
    assert (tmp_path / "new.part").exists()


async def test_commission_update_and_sync_json(tmp_path, fake_systemd, probe_port):
    """Issue 20: --json on commission, update, sync: one line, one object of the schema,
    the rollback too (exit 8, its one line on stderr after the object)."""
    from satbridge.client import schema

    def one(out: str, name: str) -> dict:
        lines = out.splitlines()
        assert len(lines) == 1, out
        document = json.loads(lines[0])
        assert schema.problems(document, schema.SCHEMAS[name]) == [], document
        return document

    root, ctl = tmp_path / "root", tmp_path / "ctl"
    key = packages.trusted_key(root / "etc/satbridge", tmp_path)
    (root / "etc/satbridge/satbridge.toml").write_text("[update]\nhealth_gate_seconds = 0.3\n")
    v1 = packages.good(tmp_path, key, "1.0.0", port=probe_port)
    v2 = packages.good(tmp_path, key, "2.0.0", port=probe_port)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    v3 = packages.good(tmp_path, key, "3.0.0", port=dead_port, variant="bad-health")
    bridge = Bridge(root, fake_systemd.address)
    try:
        await bridge.start()
        window = await asyncio.create_subprocess_exec(
            PY, "-m", "satbridge", "--root", str(root), "pair-window", "open", "--json", stdout=asyncio.subprocess.PIPE
        )
        code = json.loads((await window.communicate())[0])["code"]
        ports = ["--port", str(bridge.mgmt), "--pairing-port", str(bridge.pairing)]
        rc, out, err = await satctl(ctl, "commission", "127.0.0.1", code, "--xcc", str(v1), *ports, "--json")
        assert rc == 0, err
        done = one(out, "commission")
        assert done["satellite"]["host"] == "127.0.0.1"
        assert (done["update"]["outcome"], done["update"]["running_version"]) == ("installed", "1.0.0")
        assert done["update"]["events"][-1]["phase"] == "committed"
        rc, out, err = await satctl(ctl, "sync", str(v1), "--json")
        assert rc == 0, err
        assert one(out, "update")["outcome"] == "unchanged"
        rc, out, err = await satctl(ctl, "update", str(v2), "--health-gate", "0.5", "--json")
        assert rc == 0, err
        updated = one(out, "update")
        assert (updated["previous_version"], updated["running_version"]) == ("1.0.0", "2.0.0")
        assert [e["phase"] for e in updated["events"]] == [
            "verifying",
            "extracting",
            "switching",
            "restarting",
            "health_check",
            "committed",
        ]
        rc, out, err = await satctl(ctl, "sync", str(v3), "--json")
        assert rc == 8, (out, err)
        rolled = one(out, "update")
        assert (rolled["outcome"], rolled["running_version"]) == ("rolled_back", "2.0.0")
        assert rolled["reason"]
        assert err.strip().splitlines() == [f"satctl: error: rolled back: {rolled['reason']}"]
    finally:
        await bridge.stop()
