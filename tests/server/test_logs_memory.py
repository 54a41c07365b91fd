"""A 1 GiB log downloads in constant memory: the bridge's RSS, sampled while satctl downloads."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

PY = sys.executable
GIB = 1 << 30


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_one_gib_download_in_constant_memory(tmp_path):
    root, ctl = tmp_path / "root", tmp_path / "ctl"
    log = root / "var/log/xcc/big.log"
    log.parent.mkdir(parents=True)
    with open(log, "wb") as f:  # sparse, so the test writes nothing to disk
        f.truncate(GIB)
    mgmt, pairing = free_port(), free_port()
    server = subprocess.Popen(
        [
            PY,
            "-m",
            "satbridge",
            "--root",
            str(root),
            "--sandbox",
            "--serve",
            "--log-level",
            "warning",
            "--listen",
            f"127.0.0.1:{mgmt}",
            "--pairing-listen",
            f"127.0.0.1:{pairing}",
        ]
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
                [PY, "-m", "satbridge", "--root", str(root), "pair-window", "open", "--json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["code"]
        satctl = [PY, "-m", "satbridge.client", "--config-dir", str(ctl), "--timeout", "120"]
        subprocess.run(
            [*satctl, "pair", "127.0.0.1", code, "--port", str(mgmt), "--pairing-port", str(pairing)],
            check=True,
            capture_output=True,
        )
        idle = rss(server.pid)
        peak = [idle]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss(server.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        out = tmp_path / "big.copy"
        try:
            got = subprocess.run(
                [*satctl, "logs", "get", "xcc/big.log", "-o", str(out)], capture_output=True, text=True, timeout=300
            )
        finally:
            done.set()
            sampler.join()
        assert got.returncode == 0, got.stderr
        assert out.stat().st_size == GIB
        with open(out, "rb") as f:
            assert hashlib.file_digest(f, "sha256").hexdigest() == hashlib.sha256(b"\0" * GIB).hexdigest()
        grew = (peak[0] - idle) / 2**20
        print(f"bridge RSS idle {idle / 2**20:.0f} MiB, peak {peak[0] / 2**20:.0f} MiB (+{grew:.0f} MiB) for 1 GiB")
        assert grew < 64, f"the bridge grew by {grew:.0f} MiB while sending 1 GiB"
    finally:
        server.terminate()
        server.wait(timeout=30)
