"""`satbridge --serve` as systemd runs it: READY over NOTIFY_SOCKET, a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import grpc
import pytest

from satbridge.api.v1 import pairing_pb2, pairing_pb2_grpc
from satbridge.client.session import pairing_channel
from tests.conftest import PYTHON, pair_with

TOP = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ready_notification_and_clean_sigterm(tmp_path):
    notify_path = tmp_path / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(30)
    mgmt, pairing = free_port(), free_port()
    proc = subprocess.Popen(
        [
            PYTHON,
            str(TOP / "bridge.py"),
            "--root",
            str(tmp_path / "root"),
            "--sandbox",
            "--serve",
            "--listen",
            f"127.0.0.1:{mgmt}",
            "--pairing-listen",
            f"127.0.0.1:{pairing}",
        ],
        env={**os.environ, "NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "200000"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        message = listener.recv(4096).decode()
        assert "READY=1" in message
        pings = [listener.recv(4096).decode() for _ in range(3)]
        assert pings == ["WATCHDOG=1"] * 3, "the watchdog is fed every WATCHDOG_USEC / 2"
        # READY means serving: the pairing port answers at once.
        with socket.create_connection(("127.0.0.1", pairing), timeout=5):
            pass
        window = json.loads((tmp_path / "root/var/lib/satbridge/pairing-window.json").read_text())
        assert window["attempts_left"] == 50, "unpaired at start: the window opened by itself (pairing.max_failures)"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        while (message := listener.recv(4096).decode()) == "WATCHDOG=1":
            pass
        assert "STOPPING=1" in message
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
    assert "Traceback" not in proc.stderr.read()


async def test_request_id_is_echoed_or_made(running, inventory):
    sat = await pair_with(running, inventory)
    async with pairing_channel("127.0.0.1", running.bound.pairing, sat.identity_pem.encode()) as channel:
        stub = pairing_pb2_grpc.PairingStub(channel)
        call = stub.GetIdentity(pairing_pb2.GetIdentityRequest(), metadata=(("x-request-id", "abc-123"),))
        await call
        assert ("x-request-id", "abc-123") in tuple(await call.trailing_metadata())
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.Pair(pairing_pb2.PairRequest())
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "csr_pem" in exc.value.details()
    assert len(dict(exc.value.trailing_metadata())["x-request-id"]) == 16, "one is made when none is sent"
