"""Which TCP connection a grpc peer string names now: the socket's inode, from /proc/net/tcp{,6}.

grpc.aio tells a servicer the peer's address and port, not the connection: a new connection from
the same source port has the same peer string. The kernel's socket inode is unique to one
connection for as long as it is open, so (peer, inode) is a connection's identity, and a peer
whose inode is gone (or changed) is a connection that closed.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from pathlib import Path

_TABLES = (Path("/proc/self/net/tcp"), Path("/proc/self/net/tcp6"))
_LISTEN = "0A"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(hexaddr: str) -> Address:
    raw = bytes.fromhex(hexaddr)
    # The kernel prints each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(words) == 4:
        return ipaddress.IPv4Address(words)
    v6 = ipaddress.IPv6Address(words)
    return v6.ipv4_mapped or v6


def connections(local_port: int, tables: tuple[Path, ...] = _TABLES) -> dict[tuple[Address, int], int]:
    """Open connections to `local_port`: (peer address, peer port) -> socket inode."""
    found: dict[tuple[Address, int], int] = {}
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] == _LISTEN:
                continue
            try:
                if int(fields[1].rpartition(":")[2], 16) != local_port:
                    continue
                host, _, port = fields[2].rpartition(":")
                inode = int(fields[9])
                if inode:
                    found[(_address(host), int(port, 16))] = inode
            except ValueError:
                continue
    return found


def peer_key(peer: str) -> tuple[Address, int] | None:
    """grpc's "ipv4:192.0.2.7:4711" or "ipv6:[2001:db8::1]:4711" (maybe %-encoded) -> (address, port)."""
    kind, _, rest = urllib.parse.unquote(peer).partition(":")
    host, _, port = rest.rpartition(":")
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return (address, int(port)) if kind in ("ipv4", "ipv6") else None
    except ValueError:
        return None


class ProcNetTcp:
    """services.ports.Connections from the kernel's /proc/self/net/tcp{,6}."""

    def open_to(self, local_port: int) -> dict[tuple[Address, int], int]:
        return connections(local_port)

    def peer_key(self, peer: str) -> tuple[Address, int] | None:
        return peer_key(peer)
