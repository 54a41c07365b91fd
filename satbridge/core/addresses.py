"""Listen addresses (`HOST:PORT`, `[V6]:PORT`): parsing, and where such a listener is reached."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from satbridge.core.grammar import parse_port
from satbridge.core.status import Address
from satbridge.errors import InvalidArgument


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str, *, field: str) -> ListenAddress:
    """Parse `HOST:PORT`; HOST is an IP literal (v6 in brackets) or a name; port 0 picks one."""
    # Never strip(): whitespace is refused like in every typed value (grammar.py).
    if not text or any(ch.isspace() for ch in text):
        raise InvalidArgument(f"expected HOST:PORT without spaces, got {text!r}", field=field)
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
    return ListenAddress(host, parse_port(port, field=field))


def _wildcard_family(host: str) -> int | None:
    """0 for a listen on every address of both families (`::`, empty), 4 for every IPv4 address
    (`0.0.0.0`), None for a listen on one address or name."""
    if not host:
        return 0
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not ip.is_unspecified:
        return None
    return 0 if ip.version == 6 else 4


def reachable_addresses(listens: Sequence[ListenAddress], host: Sequence[Address]) -> list[str]:
    """The addresses a server types to reach every one of `listens` (the pairing and the
    management port), in the host's order. An address that reaches only one of them is no use:
    pairing there succeeds, and every call after it fails.

    A wildcard listen (`[::]` or empty: every family; `0.0.0.0`: IPv4 only, see ipv6(7) on
    dual-stack sockets) is reachable on each of the host's addresses except IPv6 link-local
    (which needs a zone to be typed). A listen on one address or name is reachable there only.
    Loopback is shown only when a listen names it: a remote server cannot use it.
    """
    reach: list[list[str]] = []
    for listen in listens:
        family = _wildcard_family(listen.host)
        if family is None:
            reach.append([listen.host])
            continue
        reach.append(
            [
                a.address
                for a in host
                if not ipaddress.ip_address(a.address).is_link_local
                and not (family == 4 and ipaddress.ip_address(a.address).version == 6)
            ]
        )
    named = {listen.host for listen in listens if _wildcard_family(listen.host) is None}
    found: list[str] = []
    for address in reach[0] if reach else []:
        if address in found or not all(address in other for other in reach[1:]):
            continue
        if address not in named and _is_loopback(address):
            continue
        found.append(address)
    return found


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"
