"""The NetworkManager lab: a real NM in a network namespace, on a private system bus, with
dnsmasq serving DHCP on the far end of a veth pair (198.51.100.0/24, TEST-NET-2).

NM runs in its own mount and UTS namespace with a tmpfs /run, private /etc/NetworkManager and
/var/lib/NetworkManager, and /sys read-only (so it does not wait for udev). Every daemon is
stopped by its PID and both namespaces are deleted in `finally`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab.lock import exclusive

LAN_IP = "198.51.100.1"
IFACE = "nmp0"

_BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
  <includedir>/etc/dbus-1/system.d</includedir>
</busconfig>
"""

_NM_CONF = """[main]
plugins=keyfile
auth-polkit=false
dns=none
rc-manager=unmanaged
hostname-mode=none
no-auto-default=*
dhcp=internal

[device-lab]
match-device=interface-name:{iface}
managed=1

[connectivity]
enabled=false
"""

_NM_WRAPPER = """
W="$1"
mount -t tmpfs -o mode=755 nm-run /run
mount -o remount,bind,ro /sys
mkdir -p /run/NetworkManager
# /etc as an overlay: whatever NM writes there (hostname, resolv.conf) lands in $W/etc-up.
mount -t overlay overlay -o lowerdir=/etc,upperdir="$W/etc-up",workdir="$W/etc-work" /etc
mount --bind "$W/etc-nm" /etc/NetworkManager
mount --bind "$W/varlib-nm" /var/lib/NetworkManager
hostname satellite-lab
exec NetworkManager --no-daemon --debug \
    --config=/etc/NetworkManager/NetworkManager.conf --config-dir=/etc/NetworkManager/conf.d \
    --system-config-dir="$W/sysconf-nm" \
    --intern-config=/var/lib/NetworkManager/NetworkManager-intern.conf \
    --state-file=/var/lib/NetworkManager/NetworkManager.state \
    --pid-file=/run/NetworkManager/NetworkManager.pid
"""


@dataclass(frozen=True)
class NmLab:
    sat: str
    lan: str
    bus_address: str
    work: Path

    def written_hostname(self) -> str:
        """/etc/hostname as NM wrote it (into the lab's overlay, never the machine's)."""
        path = self.work / "etc-up" / "hostname"
        return path.read_text().strip() if path.exists() else ""

    def kernel_v4(self) -> list[str]:
        out = subprocess.run(
            ["ip", "-n", self.sat, "-4", "-o", "addr", "show", "dev", IFACE], capture_output=True, text=True, check=True
        ).stdout
        return [line.split()[3] for line in out.splitlines()]


def nm_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the NetworkManager lab needs root (namespaces)"
    for tool in ("NetworkManager", "dnsmasq", "dbus-daemon", "ip", "unshare"):
        if not shutil.which(tool):
            return f"{tool} is missing (apt-get install network-manager dnsmasq-base dbus-daemon iproute2)"
    return None


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def nm_lab(tag: str) -> Iterator[NmLab]:
    reason = nm_skip_reason()
    if reason:
        pytest.skip(reason)
    with exclusive(f"nm-{tag}"):
        for ns in (f"nms-{tag}", f"nml-{tag}"):  # left by a run that was killed: ours, start clean
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        with _nm_lab(tag) as lab:
            yield lab


@contextmanager
def _nm_lab(tag: str) -> Iterator[NmLab]:
    work = Path(tempfile.mkdtemp(prefix="satbridge-nm-"))
    sat, lan = f"nms-{tag}", f"nml-{tag}"
    socket_path = work / "system_bus_socket"
    lab = NmLab(sat, lan, f"unix:path={socket_path}", work)
    made: list[str] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for ns in (sat, lan):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            made.append(ns)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(
            ["ip", "link", "add", IFACE, "netns", sat, "type", "veth", "peer", "name", f"{IFACE}-lan", "netns", lan],
            check=True,
        )
        subprocess.run(["ip", "-n", lan, "addr", "add", f"{LAN_IP}/24", "dev", f"{IFACE}-lan"], check=True)
        subprocess.run(["ip", "-n", lan, "link", "set", f"{IFACE}-lan", "up"], check=True)
        subprocess.run(["ip", "-n", sat, "link", "set", IFACE, "up"], check=True)  # a down veth stays unmanaged
        (work / "bus.conf").write_text(_BUS_CONF.format(socket=socket_path))
        logs = open(work / "daemons.log", "wb")  # noqa: SIM115 - the daemons outlive this block
        procs.append(
            subprocess.Popen(
                ["dbus-daemon", f"--config-file={work / 'bus.conf'}", "--nofork", "--nopidfile"],
                stdout=logs,
                stderr=subprocess.STDOUT,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    lan,
                    "dnsmasq",
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--port=0",
                    f"--interface={IFACE}-lan",
                    "--bind-interfaces",
                    "--except-interface=lo",
                    "--dhcp-range=198.51.100.100,198.51.100.150,255.255.255.0,1h",
                    f"--dhcp-option=option:router,{LAN_IP}",
                    "--dhcp-option=option:dns-server,198.51.100.53",
                    "--dhcp-authoritative",
                    "--no-ping",
                    f"--dhcp-leasefile={work / 'leases'}",
                    f"--pid-file={work / 'dnsmasq.pid'}",
                    "--user=root",
                    "--group=root",
                    "--log-facility=-",
                ],
                stdout=logs,
                stderr=subprocess.STDOUT,
            )
        )
        for d in ("etc-nm/conf.d", "etc-nm/system-connections", "varlib-nm", "sysconf-nm", "etc-up", "etc-work"):
            (work / d).mkdir(parents=True)
        os.chmod(work / "etc-nm/system-connections", 0o700)
        (work / "etc-nm/NetworkManager.conf").write_text(_NM_CONF.format(iface=IFACE))
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            assert time.monotonic() < deadline, "dbus-daemon did not start"
            time.sleep(0.02)
        procs.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    sat,
                    "unshare",
                    "--mount",
                    "--uts",
                    "--propagation",
                    "private",
                    "/bin/sh",
                    "-ec",
                    _NM_WRAPPER,
                    "nm-wrapper",
                    str(work),
                ],
                env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": lab.bus_address},
                stdout=logs,
                stderr=subprocess.STDOUT,
            )
        )
        deadline = time.monotonic() + 20
        while True:
            probe = subprocess.run(
                [
                    "busctl",
                    f"--address={lab.bus_address}",
                    "get-property",
                    "org.freedesktop.NetworkManager",
                    "/org/freedesktop/NetworkManager",
                    "org.freedesktop.NetworkManager",
                    "Startup",
                ],
                capture_output=True,
                text=True,
            )
            if probe.stdout.strip() == "b false":
                break
            assert time.monotonic() < deadline, f"NetworkManager did not start: {(work / 'nm.log').read_text()[-3000:]}"
            time.sleep(0.05)
        yield lab
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(work, ignore_errors=True)
