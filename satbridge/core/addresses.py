"""Parsing of listen addresses (`HOST:PORT`, `[V6]:PORT`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from satbridge.errors import InvalidArgument


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str, *, field: str) -> ListenAddress:
    """Parse `HOST:PORT`; HOST is an IP literal (v6 in brackets) or a name; port 0 picks one."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise InvalidArgument(f"expected [IPV6]:PORT, got {text!r}", field=field)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidArgument(f"{host!r} is not an IPv6 address", field=field) from None
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise InvalidArgument(f"expected HOST:PORT, got {text!r}", field=field)
        if ":" in host:
            raise InvalidArgument(f"put an IPv6 host in brackets: [{host}]:{port}", field=field)
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidArgument(f"port must be 0..65535, got {port!r}", field=field)
    return ListenAddress(host, int(port))
