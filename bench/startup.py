#!/usr/bin/env python3
"""Start-up time of each mode against the import time of only the libraries that mode needs.

    .venv/bin/python bench/startup.py [--rounds N]

Rounds are interleaved (mode, its reference, next mode, ...) so machine noise hits both sides
alike; medians are reported with their ratio. The goal is <= 1.3x.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
PY = sys.executable
sys.path.insert(0, str(TOP))

from tests.lab.bridge import free_port, satctl_pair, serving  # noqa: E402


def run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def imports(modules: str) -> list[str]:
    return [PY, "-c", f"import {modules}" if modules else "pass"]


def serve_until_identity(root: Path) -> float:
    """Start `--serve`, poll GetIdentity on the pairing port; time to the first answer."""
    from satbridge.api.v1 import pairing_pb2, pairing_pb2_grpc
    from satbridge.client.session import pairing_channel
    from satbridge.tls.certs import der_to_pem
    from satbridge.tls.handshake import fetch_server_certificate

    mgmt, pair = free_port(), free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            PY,
            str(TOP / "bridge.py"),
            "--root",
            str(root),
            "--sandbox",
            "--serve",
            "--log-level",
            "warning",
            "--listen",
            f"127.0.0.1:{mgmt}",
            "--pairing-listen",
            f"127.0.0.1:{pair}",
        ]
    )

    async def first_answer() -> None:
        while True:
            try:
                pem = der_to_pem(await fetch_server_certificate("127.0.0.1", pair, timeout=1))
                async with pairing_channel("127.0.0.1", pair, pem) as channel:
                    await pairing_pb2_grpc.PairingStub(channel).GetIdentity(pairing_pb2.GetIdentityRequest(), timeout=2)
                return
            except Exception:  # noqa: BLE001 - not up yet
                await asyncio.sleep(0.005)

    try:
        asyncio.run(first_answer())
        return time.perf_counter() - start
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def timed_cases(ctl: Path, rounds: int) -> list[tuple[str, float, float, str]]:
    """`satbridge version` and `satctl status`, each interleaved with its import-only reference."""
    cases = {
        "satbridge version": (
            lambda: run([PY, str(TOP / "bridge.py"), "version"]),
            lambda: run(imports("")),
            "bare interpreter",
        ),
        "satctl status": (
            lambda: run([PY, "-m", "satbridge.client", "--config-dir", str(ctl), "status"]),
            lambda: run(imports("grpc.aio, google.protobuf.descriptor_pool")),
            "import grpc.aio, protobuf",
        ),
    }
    rows = []
    for name, (mode, ref, what) in cases.items():
        a, b = [], []
        for _ in range(rounds):
            a.append(mode())
            b.append(ref())
        rows.append((name, statistics.median(a), statistics.median(b), what))
    return rows


DEBIAN_PY = "/usr/bin/python3"


def zipapp_cases(work: Path, rounds: int) -> list[tuple[str, float, float, str]]:
    """The shipped satbridge.pyz on Debian's python3: cold (its first run unpacks it) against a
    plain unzip of the same file, and warm against the bare interpreter."""
    if not os.path.exists(DEBIAN_PY):
        return []
    subprocess.run(
        [PY, str(TOP / "build/zipapp.py"), "--out", str(work / "dist")], check=True, capture_output=True, timeout=900
    )
    pyz = work / "dist" / "satbridge.pyz"
    base = {k: v for k, v in os.environ.items() if not k.startswith("SHIV_")}
    cold, unzip, warm, bare = [], [], [], []
    for n in range(rounds):
        env = {**base, "SHIV_ROOT": str(work / f"cold{n}")}
        cold.append(run([DEBIAN_PY, str(pyz), "version"], env))
        unzip.append(run([DEBIAN_PY, "-m", "zipfile", "-e", str(pyz), str(work / f"unzip{n}")]))
        warm.append(run([DEBIAN_PY, str(pyz), "version"], {**base, "SHIV_ROOT": str(work / "cold0")}))
        bare.append(run([DEBIAN_PY, "-c", "pass"]))
    size = pyz.stat().st_size / 2**20
    return [
        (
            f"satbridge.pyz version, cold ({size:.1f} MiB, unpacks)",
            statistics.median(cold),
            statistics.median(unzip),
            "python3 -m zipfile -e of the same file",
        ),
        ("satbridge.pyz version, warm", statistics.median(warm), statistics.median(bare), "bare /usr/bin/python3"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="satbridge-bench-"))
    try:
        root = work / "root"
        ctl = work / "ctl"
        root.mkdir()  # a read-only command creates no root of its own
        # Installed, the modules come with their bytecode (as the references' libraries do); a
        # checkout run with PYTHONDONTWRITEBYTECODE compiled satbridge on every start.
        subprocess.run([PY, "-m", "compileall", "-q", str(TOP / "satbridge")], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            [PY, str(TOP / "bridge.py"), "--root", str(root), "status"], check=True, stdout=subprocess.DEVNULL
        )  # identity made once, outside the timing
        # satctl status needs a paired satellite: pair against a bridge kept running meanwhile.
        with serving(root, die_with_us=True) as bridge:
            satctl_pair(bridge, ctl)
            rows = timed_cases(ctl, opts.rounds)
        a, b = [], []
        for _ in range(opts.rounds):
            a.append(serve_until_identity(root))
            b.append(
                run(
                    imports(
                        "grpc.aio, grpc_health.v1.health, grpc_reflection.v1alpha.reflection, "
                        "google.protobuf.descriptor_pool, cryptography.x509, dbus_next.aio"
                    )
                )
            )
        rows.append(
            (
                "--serve to first GetIdentity",
                statistics.median(a),
                statistics.median(b),
                "import grpc.aio, health, reflection, protobuf, cryptography, dbus_next",
            )
        )
        rows += zipapp_cases(work, opts.rounds)
        print(
            f"| mode | median s | reference median s | ratio | goal | reference ({opts.rounds} rounds, interleaved) |"
        )
        print("|---|---|---|---|---|---|")
        for name, t, r, what in rows:
            goal = "" if "pyz" in name else ("<= 1.3x met" if t / r <= 1.3 else "<= 1.3x NOT met")
            print(f"| {name} | {t:.3f} | {r:.3f} | {t / r:.2f}x | {goal} | {what} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.environ.pop("SATBRIDGE_ROOT", None)


if __name__ == "__main__":
    main()
