"""Network settings: validation (errors name the field) and the NetworkManager settings
builder, as pure data. The adapter only wraps the (signature, value) pairs into D-Bus variants.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from satbridge.core.grammar import check_domain, parse_prefix
from satbridge.core.grammar import check_hostname as check_hostname  # services import it from here
from satbridge.errors import InvalidArgument

MAX_DNS = 3  # what the resolver uses
MAX_SEARCH = 6


@dataclass(frozen=True)
class StaticIPv4:
    address: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address | None
    dns: tuple[ipaddress.IPv4Address, ...] = ()
    search: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkState:
    """What is in force on the managed device."""

    interface: str
    method: str  # "auto" (DHCP), "manual" (static), "" (unknown/none)
    addresses: tuple[str, ...] = ()  # "192.0.2.10/24"
    gateway: str = ""
    dns: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    dhcp: dict[str, str] = field(default_factory=dict)  # lease options
    hostname: str = ""
    pending_rollback_in: float = 0.0
    pending_lost: str = ""  # a change whose checkpoint NetworkManager lost (restarted): what to do
    settled_in: float = 0.0  # how long the change just made took to take effect (0: none made)
    note: str = ""  # what the request did when it changed nothing ("already in force: ...")


def _ip(text: str, field: str) -> ipaddress.IPv4Address:
    if ":" in text:
        raise InvalidArgument(
            f"{text!r} is an IPv6 address: only IPv4 is set here (IPv6 configures itself)", field=field
        )
    try:
        return ipaddress.IPv4Address(text)  # no strip(): surrounding whitespace is refused (grammar.py)
    except ValueError:
        raise InvalidArgument(f"{text!r} is not an IPv4 address", field=field) from None


def _unicast(ip: ipaddress.IPv4Address, field: str) -> None:
    if (
        ip.is_multicast
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
        or ip == ipaddress.IPv4Address("255.255.255.255")
    ):
        raise InvalidArgument(f"{ip} is not a usable unicast address", field=field)


def validate_static(address: str, gateway: str | None, dns: list[str], search: list[str] | None = None) -> StaticIPv4:
    """Check a static IPv4 configuration; every error names its field. `gateway` None is no
    gateway; an empty one is refused, as is surrounding whitespace anywhere (grammar.py)."""
    text = address
    if not text:
        raise InvalidArgument("enter an address with its prefix, e.g. 192.0.2.10/24", field="address")
    if ":" in text:
        _ip(text.partition("/")[0], "address")
    if "/" not in text:
        raise InvalidArgument("give the prefix too, e.g. 192.0.2.10/24", field="address")
    addr, _, prefix_text = text.partition("/")
    prefix = parse_prefix(prefix_text, field="address")
    ip = _ip(addr, "address")
    _unicast(ip, "address")
    iface = ipaddress.IPv4Interface(f"{ip}/{prefix}")
    net = iface.network
    if net.prefixlen <= 30 and ip in (net.network_address, net.broadcast_address):
        which = "network" if ip == net.network_address else "broadcast"
        raise InvalidArgument(f"{ip} is the {which} address of {net}", field="address")
    gw = None
    if gateway == "":
        raise InvalidArgument("empty: give an address, or no gateway at all", field="gateway")
    if gateway is not None:
        gw = _ip(gateway, "gateway")
        _unicast(gw, "gateway")
        if gw not in net:
            raise InvalidArgument(f"{gw} is outside {net}", field="gateway")
        if gw == ip:
            raise InvalidArgument("the gateway cannot be the satellite's own address", field="gateway")
        if net.prefixlen <= 30 and gw in (net.network_address, net.broadcast_address):
            raise InvalidArgument(f"{gw} is not a host address of {net}", field="gateway")
    servers = []
    for i, text_dns in enumerate(dns):
        server = _ip(text_dns, f"dns[{i}]")
        _unicast(server, f"dns[{i}]")
        if server in servers:
            raise InvalidArgument(f"{server} is listed twice", field=f"dns[{i}]")
        servers.append(server)
    if len(servers) > MAX_DNS:
        raise InvalidArgument(f"at most {MAX_DNS} DNS servers", field="dns")
    domains = [check_domain(d, field=f"search[{i}]") for i, d in enumerate(search or [])]
    if len(domains) > MAX_SEARCH:
        raise InvalidArgument(f"at most {MAX_SEARCH} search domains", field="search")
    return StaticIPv4(iface, gw, tuple(servers), tuple(domains))


Typed = tuple[str, Any]
"""A D-Bus (signature, value) pair; nested dict values may be Typed again."""


def _dns_u32(ip: ipaddress.IPv4Address) -> int:
    # NM's ipv4.dns is "au": in_addr_t in network byte order, read as a native uint32.
    return int(struct.unpack("=I", socket.inet_aton(str(ip)))[0])


def ipv4_settings(static: StaticIPv4 | None) -> dict[str, Typed]:
    """The WHOLE ipv4 section: Update2 merges per section, and stale legacy keys (addresses,
    dns) from an old section would silently override address-data."""
    if static is None:
        return {"method": ("s", "auto"), "address-data": ("aa{sv}", []), "dns": ("au", []), "dns-search": ("as", [])}
    section: dict[str, Typed] = {
        "method": ("s", "manual"),
        "address-data": (
            "aa{sv}",
            [{"address": ("s", str(static.address.ip)), "prefix": ("u", static.address.network.prefixlen)}],
        ),
        "dns": ("au", [_dns_u32(d) for d in static.dns]),
        "dns-search": ("as", list(static.search)),
    }
    if static.gateway:
        section["gateway"] = ("s", str(static.gateway))
    return section


def connection_settings(
    profile_id: str, uuid: str, interface: str, static: StaticIPv4 | None
) -> dict[str, dict[str, Typed]]:
    """A complete profile for one wired device (what AddConnection and Update2 take)."""
    return {
        "connection": {
            "id": ("s", profile_id),
            "uuid": ("s", uuid),
            "type": ("s", "802-3-ethernet"),
            "interface-name": ("s", interface),
            "autoconnect": ("b", True),
            "autoconnect-priority": ("i", 100),
        },
        "ipv4": ipv4_settings(static),
        "ipv6": {"method": ("s", "auto")},
    }
