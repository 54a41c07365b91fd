"""The firewall model, its validation, and the pure planner (DESIGN §6).

The planner turns a rule set into the exact lines `iptables-legacy-save` prints for the bridge's
chains. That one rendering serves three purposes: the adapter compares it with the kernel (so a
no-op change does nothing), tests compare the kernel with it, and the benchmark feeds it to
`iptables-legacy-restore` as the reference.
"""

from __future__ import annotations

import enum
import ipaddress
import string
from dataclasses import dataclass, field
from typing import TypeVar

from satbridge.errors import InvalidArgument

IN_CHAIN = "SATBRIDGE-IN"
XCC_CHAIN = "SATBRIDGE-XCC"
MAX_RULES = 2000
MAX_SOURCES = 64
MAX_PORT_ENTRIES = 15  # multiport's limit (a range counts twice)
MAX_COMMENT = 200
ICMP_ECHO_LIMIT = ("10/sec", "20")
_COMMENT_CHARS = set(string.ascii_letters + string.digits + " _-.:,;/()[]{}+=@#%&*!?<>|~^$")
_BARE = set(string.ascii_letters + string.digits + "_-")


class Family(enum.Enum):
    V4 = "v4"
    V6 = "v6"
    BOTH = "both"


class Protocol(enum.Enum):
    ANY = "any"
    TCP = "tcp"
    UDP = "udp"
    ICMP = "icmp"


class Action(enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"
    REJECT = "reject"


@dataclass(frozen=True)
class PortRange:
    first: int
    last: int


@dataclass(frozen=True)
class Rule:
    family: Family
    protocol: Protocol
    action: Action
    ports: tuple[PortRange, ...] = ()
    sources: tuple[str, ...] = ()
    comment: str = ""


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    default_action: Action = Action.DROP


def _check_rule(i: int, rule: Rule) -> Rule:
    at = f"rules[{i}]"
    if not isinstance(rule.family, Family):
        raise InvalidArgument("choose v4, v6 or both", field=f"{at}.family")
    if not isinstance(rule.protocol, Protocol):
        raise InvalidArgument("choose tcp, udp, icmp or any", field=f"{at}.protocol")
    if not isinstance(rule.action, Action):
        raise InvalidArgument("choose accept, drop or reject", field=f"{at}.action")
    if rule.ports and rule.protocol not in (Protocol.TCP, Protocol.UDP):
        raise InvalidArgument("ports need protocol tcp or udp", field=f"{at}.ports")
    entries = 0
    for j, p in enumerate(rule.ports):
        if not (1 <= p.first <= 65535 and 1 <= p.last <= 65535):
            raise InvalidArgument(f"ports are 1..65535, got {p.first}-{p.last}", field=f"{at}.ports[{j}]")
        if p.first > p.last:
            raise InvalidArgument(f"range runs backwards: {p.first}-{p.last}", field=f"{at}.ports[{j}]")
        entries += 1 if p.first == p.last else 2
    if entries > MAX_PORT_ENTRIES:
        raise InvalidArgument(f"at most {MAX_PORT_ENTRIES} ports per rule (a range counts as 2)", field=f"{at}.ports")
    if len(rule.sources) > MAX_SOURCES:
        raise InvalidArgument(f"at most {MAX_SOURCES} sources per rule", field=f"{at}.sources")
    sources = []
    for j, text in enumerate(rule.sources):
        try:
            net = ipaddress.ip_network(text.strip(), strict=True)
        except ValueError as exc:
            raise InvalidArgument(f"not a CIDR network: {exc}", field=f"{at}.sources[{j}]") from None
        if (rule.family is Family.V4 and net.version != 4) or (rule.family is Family.V6 and net.version != 6):
            raise InvalidArgument(f"{net} does not match family {rule.family.value}", field=f"{at}.sources[{j}]")
        sources.append(str(net))
    if len(rule.comment) > MAX_COMMENT or not set(rule.comment) <= _COMMENT_CHARS:
        raise InvalidArgument(
            f"at most {MAX_COMMENT} letters, digits, spaces and common punctuation (no quotes or backslashes)",
            field=f"{at}.comment",
        )
    return Rule(rule.family, rule.protocol, rule.action, rule.ports, tuple(sources), rule.comment)


def validate(rules: RuleSet) -> RuleSet:
    """Check every field (errors name it, e.g. `rules[3].ports[0]`); return the normalised set."""
    if len(rules.rules) > MAX_RULES:
        raise InvalidArgument(f"at most {MAX_RULES} rules", field="rules")
    if not isinstance(rules.default_action, Action):
        raise InvalidArgument("choose accept, drop or reject", field="default_action")
    return RuleSet(tuple(_check_rule(i, r) for i, r in enumerate(rules.rules)), rules.default_action)


@dataclass(frozen=True)
class Spec:
    """One iptables rule, in the order iptables-save prints its parts."""

    chain: str
    target: str
    src: str = ""
    iface: str = ""
    proto: str = ""
    matches: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    target_params: tuple[tuple[str, str], ...] = ()

    def save_line(self) -> str:
        parts = [f"-A {self.chain}"]
        if self.src:
            parts.append(f"-s {self.src}")
        if self.iface:
            parts.append(f"-i {self.iface}")
        if self.proto:
            parts.append(f"-p {self.proto}")
        for name, params in self.matches:
            parts.append(f"-m {name}")
            parts.extend(f"--{k.replace('_', '-')} {save_string(v) if k == 'comment' else v}" for k, v in params)
        parts.append(f"-j {self.target}")
        parts.extend(f"--{k.replace('_', '-')} {v}" for k, v in self.target_params)
        return " ".join(parts)


def save_string(value: str) -> str:
    """Quote like xtables_save_string (comments only ever hold safe characters)."""
    return value if value and set(value) <= _BARE else f'"{value}"'


@dataclass(frozen=True)
class Plan:
    """Desired contents of the bridge's chains, per family ("v4", "v6")."""

    chains: dict[str, tuple[Spec, ...]] = field(default_factory=dict)

    def save_lines(self, family: str) -> list[str]:
        return [spec.save_line() for spec in self.chains[family]]


def _target(action: Action, v6: bool) -> tuple[str, tuple[tuple[str, str], ...]]:
    if action is Action.REJECT:
        return "REJECT", (("reject_with", "icmp6-port-unreachable" if v6 else "icmp-port-unreachable"),)
    return action.value.upper(), ()


def _base(ports: tuple[int, ...], default: Action, v6: bool) -> list[Spec]:
    icmp = "ipv6-icmp" if v6 else "icmp"
    echo = ("icmp6", (("icmpv6_type", "128"),)) if v6 else ("icmp", (("icmp_type", "8"),))
    limit = ("limit", (("limit", ICMP_ECHO_LIMIT[0]), ("limit_burst", ICMP_ECHO_LIMIT[1])))
    comment = ("comment", (("comment", "satbridge management and pairing"),))
    specs = [
        Spec(IN_CHAIN, "ACCEPT", iface="lo"),
        Spec(IN_CHAIN, "ACCEPT", matches=(("conntrack", (("ctstate", "RELATED,ESTABLISHED"),)),)),
        Spec(
            IN_CHAIN, "ACCEPT", proto="tcp", matches=(("multiport", (("dports", ",".join(map(str, ports))),)), comment)
        ),
        Spec(IN_CHAIN, "ACCEPT", proto=icmp, matches=(echo, limit)),
    ]
    if v6:
        # Neighbour discovery: without it IPv6 stops working at all under a DROP default.
        specs += [
            Spec(IN_CHAIN, "ACCEPT", proto=icmp, matches=(("icmp6", (("icmpv6_type", t),)),))
            for t in ("133", "134", "135", "136")
        ]
    target, params = _target(default, v6)
    return [*specs, Spec(IN_CHAIN, XCC_CHAIN), Spec(IN_CHAIN, target, target_params=params)]


def _xcc(rule: Rule, v6: bool) -> list[Spec]:
    version = 6 if v6 else 4
    if (rule.family is Family.V4 and v6) or (rule.family is Family.V6 and not v6):
        return []
    sources = [s for s in rule.sources if ipaddress.ip_network(s).version == version]
    if rule.sources and not sources:
        return []  # a "both" rule whose sources are all of the other family
    proto = {Protocol.ANY: "", Protocol.TCP: "tcp", Protocol.UDP: "udp", Protocol.ICMP: "ipv6-icmp" if v6 else "icmp"}[
        rule.protocol
    ]
    matches: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    if rule.ports:
        dports = ",".join(str(p.first) if p.first == p.last else f"{p.first}:{p.last}" for p in rule.ports)
        matches.append(("multiport", (("dports", dports),)))
    if rule.comment:
        matches.append(("comment", (("comment", rule.comment),)))
    target, params = _target(rule.action, v6)
    return [
        Spec(XCC_CHAIN, target, src=src, proto=proto, matches=tuple(matches), target_params=params)
        for src in (sources or [""])
    ]


def plan(rules: RuleSet, bridge_ports: tuple[int, ...]) -> Plan:
    """The bridge's chains for a validated rule set. The base chain always comes first, so no
    rule can remove or shadow the bridge's own ports."""
    chains = {}
    for family, v6 in (("v4", False), ("v6", True)):
        xcc = [spec for rule in rules.rules for spec in _xcc(rule, v6)]
        chains[family] = tuple(_base(bridge_ports, rules.default_action, v6) + xcc)
    return Plan(chains)


JUMP_LINE = f"-A INPUT -j {IN_CHAIN}"


def bridge_lines(save_output: str) -> list[str]:
    """The lines of iptables-save output that belong to the bridge (its chains and INPUT's jump)."""
    mine = (f"-A {IN_CHAIN} ", f"-A {XCC_CHAIN} ")
    return [line for line in save_output.splitlines() if line.startswith(mine) or line == JUMP_LINE]


def expected_lines(p: Plan, family: str) -> list[str]:
    """What bridge_lines() reads back when `p` is in force (INPUT's jump first, as save orders)."""
    specs = p.chains[family]
    ins = [s.save_line() for s in specs if s.chain == IN_CHAIN]
    xcc = [s.save_line() for s in specs if s.chain == XCC_CHAIN]
    return [JUMP_LINE, *ins, *xcc]


def to_json(rules: RuleSet) -> dict[str, object]:
    return {
        "default_action": rules.default_action.value,
        "rules": [
            {
                "family": r.family.value,
                "protocol": r.protocol.value,
                "action": r.action.value,
                "ports": [[p.first, p.last] for p in r.ports],
                "sources": list(r.sources),
                "comment": r.comment,
            }
            for r in rules.rules
        ],
    }


E = TypeVar("E", Family, Protocol, Action)


def _enum(kind: type[E], value: object, at: str) -> E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in kind)
        raise InvalidArgument(f"{value!r} is not one of {choices}", field=at) from None


def from_json(data: dict[str, object]) -> RuleSet:
    """Parse the JSON form (files, satctl); raises InvalidArgument naming the field."""

    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise InvalidArgument("expected a list", field="rules")
    rules = []
    for i, r in enumerate(raw_rules):
        at = f"rules[{i}]"
        if not isinstance(r, dict):
            raise InvalidArgument("expected an object", field=at)
        unknown = set(r) - {"family", "protocol", "action", "ports", "sources", "comment"}
        if unknown:
            raise InvalidArgument(f"unknown keys {sorted(unknown)}", field=at)
        ports = []
        for j, p in enumerate(r.get("ports", [])):
            if isinstance(p, int) and not isinstance(p, bool):
                ports.append(PortRange(p, p))
            elif isinstance(p, str) and p.replace("-", "", 1).replace(":", "", 1).isdigit():
                first, _, last = p.replace(":", "-").partition("-")
                ports.append(PortRange(int(first), int(last or first)))
            elif isinstance(p, list) and len(p) == 2 and all(isinstance(x, int) for x in p):
                ports.append(PortRange(p[0], p[1]))
            else:
                raise InvalidArgument(f'expected 80, "1000-2000" or [1000, 2000], got {p!r}', field=f"{at}.ports[{j}]")
        sources = r.get("sources", [])
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise InvalidArgument("expected a list of CIDR strings", field=f"{at}.sources")
        comment = r.get("comment", "")
        if not isinstance(comment, str):
            raise InvalidArgument("expected a string", field=f"{at}.comment")
        rules.append(
            Rule(
                family=_enum(Family, r.get("family", "both"), f"{at}.family"),
                protocol=_enum(Protocol, r.get("protocol"), f"{at}.protocol"),
                action=_enum(Action, r.get("action"), f"{at}.action"),
                ports=tuple(ports),
                sources=tuple(sources),
                comment=comment,
            )
        )
    default = _enum(Action, data.get("default_action", "drop"), "default_action")
    return validate(RuleSet(tuple(rules), default))
