"""The appliance lab: the real rootfs booted with systemd-nspawn, its systemd reached over D-Bus.

Needs root, systemd-nspawn and mmdebstrap (or a cached rootfs); tests that use it skip with the
reason otherwise. Everything it makes (the container, its cgroup) goes away in `finally`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
BUILD = TOP / "build" / "appliance"
CACHE = Path(os.environ.get("SATBRIDGE_LAB_CACHE", "/var/cache/satbridge-lab"))


@dataclass(frozen=True)
class Appliance:
    name: str
    leader: int  # the container's PID 1, as the host sees it

    @property
    def root(self) -> Path:
        return Path(f"/proc/{self.leader}/root")

    @property
    def bus_address(self) -> str:
        return f"unix:path={self.root}/run/dbus/system_bus_socket"

    @property
    def journal(self) -> Path:
        return self.root / "var" / "log" / "journal"


def lab_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the appliance lab needs root (systemd-nspawn)"
    if not shutil.which("systemd-nspawn"):
        return "systemd-nspawn is missing (apt-get install systemd-container)"
    if not shutil.which("mmdebstrap") and not any(CACHE.glob("rootfs-*/.complete")):
        return "mmdebstrap is missing and no rootfs is cached (apt-get install mmdebstrap)"
    return None


def build_rootfs() -> Path:
    done = subprocess.run([str(BUILD / "build-rootfs.sh"), str(CACHE)], capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"build-rootfs.sh failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _system_state(address: str) -> str:
    done = subprocess.run(
        [
            "busctl",
            f"--address={address}",
            "get-property",
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "SystemState",
        ],
        capture_output=True,
        text=True,
        timeout=5,
    )
    return done.stdout.strip()


def _remove_cgroups(name: str) -> None:
    for hierarchy in ("systemd", "unified"):
        base = Path(f"/sys/fs/cgroup/{hierarchy}/nspawn-{name}")
        if base.exists():
            for path in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                path.rmdir()
            base.rmdir()


@contextmanager
def booted(name: str = "satlab", *, log: Path) -> Iterator[Appliance]:
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    rootfs = build_rootfs()
    with open(log, "wb") as out:
        nspawn = subprocess.Popen(
            [str(BUILD / "nspawn-boot.sh"), str(rootfs), name, "--console=passive"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        leader = 0
        while time.monotonic() < deadline:
            if nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited {nspawn.returncode}: {log.read_text()[-2000:]}")
            kids = _children(nspawn.pid)
            if kids and Path(f"/proc/{kids[0]}/root/run/dbus/system_bus_socket").exists():
                leader = kids[0]
                if _system_state(Appliance(name, leader).bus_address) in {'s "running"', 's "degraded"'}:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the container did not boot within 60 s: {log.read_text()[-2000:]}")
        yield Appliance(name, leader)
    finally:
        if nspawn.poll() is None:
            nspawn.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off
            try:
                nspawn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                nspawn.kill()
                nspawn.wait()
        _remove_cgroups(name)
