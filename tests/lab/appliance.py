"""The appliance lab: the real rootfs booted with systemd-nspawn, its systemd reached over D-Bus.

Needs root, systemd-nspawn and the rootfs that build/setup-labs.sh builds before pytest; tests
that use it skip with the reason otherwise (a failure, once the labs are set up: tests/conftest.py).
Everything it makes (the container, its cgroup) goes away in `finally`.
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

from tests.lab.lock import exclusive, in_use

TOP = Path(__file__).resolve().parents[2]
BUILD = TOP / "build" / "appliance"
CACHE = Path(os.environ.get("SATBRIDGE_LAB_CACHE", "/var/cache/satbridge-lab"))


# The container's link (--veth): its far end in the lab netns, a DHCP server there, and the one
# address that server hands out, so the appliance's own NetworkManager configures host0 by DHCP
# as it would on a real network (TEST-NET-3).
LAB_GATEWAY = "203.0.113.1"
LAB_SATELLITE = "203.0.113.2"


@dataclass(frozen=True)
class Appliance:
    name: str
    leader: int  # the container's PID 1, as the host sees it
    netns: str | None = None  # the lab netns at the far end of the veth, if booted with one

    @property
    def root(self) -> Path:
        return Path(f"/proc/{self.leader}/root")

    @property
    def bus_address(self) -> str:
        return f"unix:path={self.root}/run/dbus/system_bus_socket"

    @property
    def journal(self) -> Path:
        return self.root / "var" / "log" / "journal"


def rootfs_path() -> Path:
    """Where build-rootfs.sh keeps the rootfs for its current inputs (built or not)."""
    done = subprocess.run(
        [str(BUILD / "build-rootfs.sh"), "--path", str(CACHE)], capture_output=True, text=True, check=True
    )
    return Path(done.stdout.strip())


def rootfs_skip_reason() -> str | None:
    """The labs never build the rootfs themselves (a cold build takes minutes, longer than a test's
    timeout): build/setup-labs.sh does, before pytest."""
    if os.geteuid() != 0:
        return "the appliance lab needs root (systemd-nspawn, mmdebstrap)"
    if not (rootfs_path() / ".complete").exists():
        return f"the appliance rootfs is not built in {CACHE} (run: sudo build/setup-labs.sh)"
    return None


def lab_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the appliance lab needs root (systemd-nspawn)"
    if not shutil.which("systemd-nspawn"):
        return "systemd-nspawn is missing (apt-get install systemd-container)"
    return rootfs_skip_reason()


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


def _serve_dhcp(name: str, work: Path) -> subprocess.Popen[bytes]:
    """Address the far end ve-NAME (nspawn creates it as it starts) and serve DHCP on it."""
    netns, link = f"lab-{name}", f"ve-{name}"
    deadline = time.monotonic() + 30
    while subprocess.run(["ip", "-n", netns, "link", "show", link], capture_output=True).returncode:
        if time.monotonic() > deadline:
            raise RuntimeError(f"nspawn made no {link} in {netns}")
        time.sleep(0.05)
    subprocess.run(["ip", "-n", netns, "addr", "add", f"{LAB_GATEWAY}/24", "dev", link], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", link, "up"], check=True)
    with open(work / "dnsmasq.log", "wb") as out:
        return subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{netns}",
                "--",
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                f"--interface={link}",
                "--bind-interfaces",
                f"--dhcp-range={LAB_SATELLITE},{LAB_SATELLITE},255.255.255.0,1h",
                "--dhcp-authoritative",
                "--no-ping",
                f"--dhcp-leasefile={work / 'leases'}",
                "--user=root",
                "--group=root",
                "--log-facility=-",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def booted(name: str = "satlab", *, log: Path, veth: bool = False) -> Iterator[Appliance]:
    """Boot the rootfs; with `veth`, on a link to a lab netns lab-NAME (DHCP served there)
    instead of a private loopback only. Everything is torn down in `finally`."""
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    if veth and not shutil.which("dnsmasq"):
        pytest.skip("dnsmasq is missing (apt-get install dnsmasq-base)")
    rootfs = rootfs_path()
    with exclusive(f"nspawn-{name}"), in_use(rootfs):
        if veth:  # a netns of this name left by a run that was killed is ours: start clean
            subprocess.run(["ip", "netns", "del", f"lab-{name}"], capture_output=True)
        with _booted(name, rootfs, log=log, veth=veth) as appliance:
            yield appliance


@contextmanager
def _booted(name: str, rootfs: Path, *, log: Path, veth: bool) -> Iterator[Appliance]:
    dhcp = None
    with open(log, "wb") as out:
        nspawn = subprocess.Popen(
            [str(BUILD / "nspawn-boot.sh"), str(rootfs), name, *(["--veth"] if veth else []), "--console=passive"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        if veth:
            dhcp = _serve_dhcp(name, log.parent)
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
        yield Appliance(name, leader, f"lab-{name}" if veth else None)
    finally:
        _stop(nspawn, 30)  # SIGTERM: nspawn asks the container's systemd to power off
        _stop(dhcp, 10)
        if veth:
            subprocess.run(["ip", "netns", "del", f"lab-{name}"], capture_output=True)
        _remove_cgroups(name)
