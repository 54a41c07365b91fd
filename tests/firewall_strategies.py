"""Hypothesis strategies for firewall rule sets: every field, match and family the API accepts."""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from satbridge.core import firewall as fw

COMMENT_CHARS = "".join(sorted(fw.COMMENT_CHARS))
IFACE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-"


@st.composite
def v4_networks(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from([0, 1, 8, 16, 24, 31, 32]) | st.integers(0, 32))
    net = ipaddress.IPv4Network((draw(st.integers(0, 2**32 - 1)), prefix), strict=False)
    return str(net)


@st.composite
def v6_networks(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from([0, 1, 32, 48, 64, 96, 127, 128]) | st.integers(0, 128))
    address = draw(
        st.integers(0, 2**128 - 1)
        | st.integers(0, 2**32 - 1).map(lambda a: 0xFFFF_0000_0000 | a)  # IPv4-mapped
        | st.integers(0, 2**32 - 1)  # IPv4-compatible
        | st.integers(0, 2**64 - 1).map(lambda a: (0x2001_0DB8 << 96) | a)
    )
    return str(ipaddress.IPv6Network((address, prefix), strict=False))


def comments() -> st.SearchStrategy[str]:
    return st.text(COMMENT_CHARS, max_size=40).filter(lambda c: not c.startswith("!"))  # refused: see validate()


@st.composite
def port_lists(draw: st.DrawFn) -> tuple[fw.PortRange, ...]:
    ports: list[fw.PortRange] = []
    budget = draw(st.integers(0, fw.MAX_PORT_ENTRIES))
    while budget > 0:
        first = draw(st.integers(1, 65535))
        last = draw(st.sampled_from([first, 65535]) | st.integers(first, 65535)) if budget >= 2 else first
        ports.append(fw.PortRange(first, last))
        budget -= 1 if first == last else 2
    return tuple(ports)


@st.composite
def rules(draw: st.DrawFn) -> fw.Rule:
    family = draw(st.sampled_from(list(fw.Family)))
    protocol = draw(st.sampled_from(list(fw.Protocol)))
    ports = draw(port_lists()) if protocol in (fw.Protocol.TCP, fw.Protocol.UDP) else ()
    nets = {fw.Family.V4: v4_networks(), fw.Family.V6: v6_networks(), fw.Family.BOTH: v4_networks() | v6_networks()}
    sources = draw(st.lists(nets[family], max_size=4))
    return fw.Rule(family, protocol, draw(st.sampled_from(list(fw.Action))), ports, tuple(sources), draw(comments()))


def rule_sets(max_rules: int = 6) -> st.SearchStrategy[fw.RuleSet]:
    return st.builds(fw.RuleSet, st.lists(rules(), max_size=max_rules).map(tuple), st.sampled_from(list(fw.Action)))


def interface_names() -> st.SearchStrategy[str]:
    """Every shape `-i` takes: 1 to 15 characters, or a `+` wildcard (alone, short or long)."""
    name = st.text(IFACE_CHARS, min_size=1, max_size=15)
    wildcard = st.text(IFACE_CHARS, max_size=14).map(lambda s: s + "+")
    return st.sampled_from(["lo", "vs", "veth1", "tap0", "eth0", "ens3", "+", "a" * 15]) | name | wildcard
