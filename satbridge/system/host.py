"""Facts about the host, read from /proc, statvfs and the kernel's interface list."""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct
import time
from pathlib import Path

from satbridge.core.status import Address, DiskUsage, MemoryUsage

_SIOCGIFADDR = 0x8915
_SIOCGIFNETMASK = 0x891B


def _ioctl_v4(sock: socket.socket, request: int, name: str) -> str | None:
    try:
        raw = fcntl.ioctl(sock.fileno(), request, struct.pack("256s", name.encode()[:15]))
    except OSError:
        return None
    return socket.inet_ntoa(raw[20:24])


class LinuxHost:
    """The HostInfo port for the machine (or network namespace) we run in."""

    def __init__(self, disk_path: Path, proc: Path = Path("/proc")) -> None:
        self.disk_path = disk_path
        self.proc = proc

    def hostname(self) -> str:
        return socket.gethostname()

    def addresses(self) -> list[Address]:
        found: list[Address] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _, name in socket.if_nameindex():
                addr = _ioctl_v4(sock, _SIOCGIFADDR, name)
                mask = _ioctl_v4(sock, _SIOCGIFNETMASK, name)
                if addr and mask:
                    found.append(Address(name, addr, ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen))
        try:
            lines = (self.proc / "net" / "if_inet6").read_text().splitlines()
        except OSError:
            lines = []
        for line in lines:
            hexaddr, _, plen, _, _, name = line.split()
            found.append(Address(name, str(ipaddress.IPv6Address(bytes.fromhex(hexaddr))), int(plen, 16)))
        return found

    def uptime_seconds(self) -> float:
        try:
            return float((self.proc / "uptime").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return time.monotonic()

    def disk(self) -> DiskUsage:
        path = self.disk_path
        while not path.exists():
            path = path.parent
        st = os.statvfs(path)
        return DiskUsage(str(self.disk_path), st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)

    def memory(self) -> MemoryUsage:
        info: dict[str, int] = {}
        try:
            for line in (self.proc / "meminfo").read_text().splitlines():
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return MemoryUsage(info.get("MemTotal", 0), info.get("MemAvailable", 0))

    def boot_id(self) -> str:
        try:
            return (self.proc / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
        except OSError:
            return ""
