"""The firewall model, its validation, and the pure planner (DESIGN §6).

The planner turns a rule set into the exact lines `iptables-legacy-save` prints for the bridge's
chains. That one rendering serves three purposes: the adapter compares it with the kernel (so a
no-op change does nothing), tests compare the kernel with it, and the benchmark feeds it to
`iptables-legacy-restore` as the reference.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import re
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
MAX_KERNEL_RULES = 4000
"""Per family, the XCC chain's kernel rules: a rule counts once per source of that family (once
if it has none). It bounds both the time a Set takes (about 0.6 s per 1000 rules to build) and
the size of every answer carrying the set, so that any accepted set round-trips through Set and
Get within satctl's defaults (15 s deadline, gRPC's 4 MiB receive limit; tests prove both)."""
ICMP_ECHO_LIMIT = ("10/sec", "20")
COMMENT_CHARS = frozenset(string.ascii_letters + string.digits + " _-.:,;/()[]{}+=@#%&*!?<>|~^$")
MAX_RULE_FILE = 8 << 20
"""Bytes of a rule file (satctl's FILE, the factory file). The largest accepted set takes about
1.3 MB as compact JSON and under 4 MB indented by 4 (a test proves it); anything bigger is
refused before it is parsed."""
# One ASCII grammar, refused rather than normalised: no whitespace, no signs, no leading zeros
# (a "00080" port or a "/024" prefix is a typo, not a spelling), no non-ASCII digits.
_NUMBER = r"(?:0|[1-9][0-9]{0,4})"
_PORT_TEXT = re.compile(rf"({_NUMBER})(?:[-:]({_NUMBER}))?", re.ASCII)
_CIDR_TEXT = re.compile(r"[0-9A-Fa-f:.]+(?:/(?:0|[1-9][0-9]{0,2}))?", re.ASCII)
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


def _shown(n: int) -> str:
    """A number for an error message: a huge one is not printed (int() refuses over 4300 digits)."""
    return str(n) if isinstance(n, int) and -(10**9) < n < 10**9 else "a number out of range"


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
            raise InvalidArgument(
                f"ports are 1..65535, got {_shown(p.first)}-{_shown(p.last)}", field=f"{at}.ports[{j}]"
            )
        if p.first > p.last:
            raise InvalidArgument(f"range runs backwards: {p.first}-{p.last}", field=f"{at}.ports[{j}]")
        entries += 1 if p.first == p.last else 2
    if entries > MAX_PORT_ENTRIES:
        raise InvalidArgument(f"at most {MAX_PORT_ENTRIES} ports per rule (a range counts as 2)", field=f"{at}.ports")
    if len(rule.sources) > MAX_SOURCES:
        raise InvalidArgument(f"at most {MAX_SOURCES} sources per rule", field=f"{at}.sources")
    sources = []
    for j, text in enumerate(rule.sources):
        # ASCII hex digits, dots, colons and one prefix length without leading zeros: no zone ids
        # ("fe80::%eth0", which iptables cannot express), no netmasks, no non-ASCII digits, and no
        # whitespace around it (refused, not stripped: one grammar with the ports).
        if not isinstance(text, str) or not _CIDR_TEXT.fullmatch(text):
            raise InvalidArgument(
                f"not a CIDR network: {text!r} (e.g. 198.51.100.0/24 or 2001:db8::/32)", field=f"{at}.sources[{j}]"
            )
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise InvalidArgument(f"not a CIDR network: {exc}", field=f"{at}.sources[{j}]") from None
        if (rule.family is Family.V4 and net.version != 4) or (rule.family is Family.V6 and net.version != 6):
            raise InvalidArgument(f"{net} does not match family {rule.family.value}", field=f"{at}.sources[{j}]")
        sources.append(str(net))
    if len(rule.comment) > MAX_COMMENT or not set(rule.comment) <= COMMENT_CHARS:
        raise InvalidArgument(
            f"at most {MAX_COMMENT} letters, digits, spaces and common punctuation (no quotes or backslashes)",
            field=f"{at}.comment",
        )
    if rule.comment.startswith("!"):
        # python-iptables reads a leading "!" of any value as "not" (iptc.ip4tc.IPTCModule.parse),
        # and the comment match cannot be negated: the kernel would never get this text.
        raise InvalidArgument("a comment cannot start with '!'", field=f"{at}.comment")
    return Rule(rule.family, rule.protocol, rule.action, rule.ports, tuple(sources), rule.comment)


def kernel_rules(rules: RuleSet) -> dict[str, int]:
    """How many rules the XCC chain holds per family ("v4", "v6") for a validated set."""
    return {family: sum(len(_sources(r, v6)) for r in rules.rules) for family, v6 in (("v4", False), ("v6", True))}


def validate(rules: RuleSet) -> RuleSet:
    """Check every field (errors name it, e.g. `rules[3].ports[0]`); return the normalised set."""
    if len(rules.rules) > MAX_RULES:
        raise InvalidArgument(f"at most {MAX_RULES} rules", field="rules")
    if not isinstance(rules.default_action, Action):
        raise InvalidArgument("choose accept, drop or reject", field="default_action")
    checked = RuleSet(tuple(_check_rule(i, r) for i, r in enumerate(rules.rules)), rules.default_action)
    for family, count in kernel_rules(checked).items():
        if count > MAX_KERNEL_RULES:
            raise InvalidArgument(
                f"this set makes {count} {family} kernel rules (each rule once per source of that family); "
                f"the limit is MAX_KERNEL_RULES={MAX_KERNEL_RULES} per family",
                field="rules",
            )
    return checked


def kernel_text(network: str) -> str:
    """A validated CIDR as iptables-legacy-save prints it: the address through glibc's inet_ntop
    (which writes an IPv4-mapped or IPv4-compatible IPv6 address with a dotted tail, where Python
    writes hex), then `/` and the prefix length. A /0 prints nothing: the kernel keeps no `-s`."""
    net = ipaddress.ip_network(network)
    if net.prefixlen == 0:
        return ""
    if net.version == 4:
        return str(net)
    return f"{_ntop6(net.network_address.packed)}/{net.prefixlen}"


def _ntop6(packed: bytes) -> str:
    """inet_ntop(AF_INET6) as glibc writes it (resolv/inet_ntop.c, inet_ntop6)."""
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, 16, 2)]
    best_base, best_len, cur_base, cur_len = -1, 0, -1, 0
    for i, word in enumerate([*words, 1]):  # a sentinel closes a trailing run
        if word == 0:
            cur_base, cur_len = (i, 1) if cur_base == -1 else (cur_base, cur_len + 1)
        elif cur_base != -1:
            if best_base == -1 or cur_len > best_len:
                best_base, best_len = cur_base, cur_len
            cur_base = -1
    if best_len < 2:
        best_base = -1
    out = ""
    for i in range(8):
        if best_base != -1 and best_base <= i < best_base + best_len:
            if i == best_base:
                out += ":"
            continue
        if i:
            out += ":"
        if i == 6 and best_base == 0 and (best_len == 6 or (best_len == 5 and words[5] == 0xFFFF)):
            out += ".".join(str(b) for b in packed[12:])
            break
        out += f"{words[i]:x}"
    if best_base != -1 and best_base + best_len == 8:
        out += ":"
    return out


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
            parts.extend(_option(k, save_string(v) if k == "comment" else v) for k, v in params)
        parts.append(f"-j {self.target}")
        parts.extend(_option(k, v) for k, v in self.target_params)
        return " ".join(parts)


def _option(key: str, value: str) -> str:
    """`--key value`, or `--key` alone for a flag (an empty value, e.g. `--connlimit-saddr`)."""
    flag = f"--{key.replace('_', '-')}"
    return f"{flag} {value}" if value else flag


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


@dataclass(frozen=True)
class BridgePort:
    """One of the bridge's own TCP ports, and how many connections one source may hold open on
    it at once (0: no limit). A source is one IPv4 address or one IPv6 /64 (what one host on a
    LAN can take by itself). The kernel refuses the connection past the share with a TCP reset
    before grpc sees it: grpc has one pool of connections for all sources, so without a share a
    single flooding host takes every slot and the paired server's new connections wait (issue 16)."""

    port: int
    per_source: int = 0


CONNLIMIT_MASK = {False: "32", True: "64"}
"""The connlimit mask per family (v6 = True): one IPv4 host, one IPv6 /64 (a host picks any
address in its /64, so a share per /128 would be no share)."""


def _share(port: BridgePort, v6: bool) -> Spec:
    limit = (
        ("connlimit_above", str(port.per_source)),
        ("connlimit_mask", CONNLIMIT_MASK[v6]),
        ("connlimit_saddr", ""),
    )
    return Spec(
        IN_CHAIN,
        "REJECT",
        proto="tcp",
        matches=(("tcp", (("dport", str(port.port)),)), ("connlimit", limit)),
        target_params=(("reject_with", "tcp-reset"),),
    )


def _base(bridge_ports: tuple[int | BridgePort, ...], default: Action, v6: bool) -> list[Spec]:
    ports = [p if isinstance(p, BridgePort) else BridgePort(p) for p in bridge_ports]
    icmp = "ipv6-icmp" if v6 else "icmp"
    echo = ("icmp6", (("icmpv6_type", "128"),)) if v6 else ("icmp", (("icmp_type", "8"),))
    limit = ("limit", (("limit", ICMP_ECHO_LIMIT[0]), ("limit_burst", ICMP_ECHO_LIMIT[1])))
    comment = ("comment", (("comment", "satbridge management and pairing"),))
    specs = [
        Spec(IN_CHAIN, "ACCEPT", iface="lo"),
        Spec(IN_CHAIN, "ACCEPT", matches=(("conntrack", (("ctstate", "RELATED,ESTABLISHED"),)),)),
        # Behind ESTABLISHED, so only a new connection counts against its source's share.
        *(_share(p, v6) for p in ports if p.per_source > 0),
        Spec(
            IN_CHAIN,
            "ACCEPT",
            proto="tcp",
            matches=(("multiport", (("dports", ",".join(str(p.port) for p in ports)),)), comment),
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


def _sources(rule: Rule, v6: bool) -> list[str]:
    """The `-s` values of `rule` in one family, as the kernel prints them ("" for any), one per
    kernel rule: none when the rule is for the other family or all its sources are."""
    if (rule.family is Family.V4 and v6) or (rule.family is Family.V6 and not v6):
        return []
    version = 6 if v6 else 4
    sources = [kernel_text(s) for s in rule.sources if ipaddress.ip_network(s).version == version]
    if rule.sources and not sources:
        return []  # a "both" rule whose sources are all of the other family
    return sources or [""]


def _xcc(rule: Rule, v6: bool) -> list[Spec]:
    sources = _sources(rule, v6)
    if not sources:
        return []
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
        Spec(XCC_CHAIN, target, src=src, proto=proto, matches=tuple(matches), target_params=params) for src in sources
    ]


def plan(rules: RuleSet, bridge_ports: tuple[int | BridgePort, ...]) -> Plan:
    """The bridge's chains for a validated rule set. The base chain always comes first, so no
    rule can remove or shadow the bridge's own ports (nor lift their per-source shares)."""
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


def foreign_input_rules(save_output: str) -> tuple[list[str], list[str]]:
    """INPUT's rules that the bridge did not write, as (ahead of its jump, behind it).

    Ahead of the jump they are matched before the bridge's rules (a hand-made ACCEPT keeps
    working while the bridge's rules say otherwise); behind it they never match, because
    SATBRIDGE-IN ends every packet with the default action. A Set that changes a family puts the
    jump back in first place, so it moves the first kind into the second (issue 15, item 6).
    Without a jump, every INPUT rule counts as ahead."""
    ahead: list[str] = []
    behind: list[str] = []
    seen_jump = False
    for line in save_output.splitlines():
        if line == JUMP_LINE:
            seen_jump = True
        elif line.startswith("-A INPUT "):
            (behind if seen_jump else ahead).append(line)
    return ahead, behind


MAX_NAMED = 10
"""Foreign rules a warning names; the rest are counted. Thousands of hand-made rules made
Get and Status answers bigger than satctl's 4 MiB limit (red team of issue 15, finding 3)."""
MAX_LINE = 200
MAX_WARNINGS = 24
MAX_WARNING = 3000
"""Every answer carries at most MAX_WARNINGS warnings of at most MAX_WARNING characters each
(72 KB), whatever the kernel holds."""


def name_some(lines: list[str], limit: int = MAX_NAMED) -> str:
    """`lines` for a warning: the first `limit`, each cut to MAX_LINE characters, then how many
    more there are ("a; b; ... and 8990 more")."""
    shown = [line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…" for line in lines[:limit]]
    more = len(lines) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def bound_warnings(warnings: list[str]) -> tuple[str, ...]:
    """At most MAX_WARNINGS warnings of at most MAX_WARNING characters: an answer's size never
    depends on what someone else put in the kernel."""
    cut = [w if len(w) <= MAX_WARNING else w[: MAX_WARNING - 1] + "…" for w in warnings[:MAX_WARNINGS]]
    if len(warnings) > MAX_WARNINGS:
        cut[-1] = f"{len(warnings) - MAX_WARNINGS + 1} more warnings not shown"
    return tuple(cut)


def jump_is_first(save_output: str) -> bool:
    """Whether INPUT's first rule is the bridge's jump (what every Set leaves behind)."""
    for line in save_output.splitlines():
        if line.startswith("-A INPUT "):
            return line == JUMP_LINE
    return False


def other_jumps(save_output: str) -> bool:
    """Whether INPUT jumps to the bridge's chain other than by its own plain jump (someone wrote
    `-A INPUT -i eth0 -j SATBRIDGE-IN`): those are found and removed rule by rule, slowly."""
    return any(
        line.startswith("-A INPUT ") and line.endswith(f" -j {IN_CHAIN}") and line != JUMP_LINE
        for line in save_output.splitlines()
    )


EARLY_CHAINS = {"raw": ("PREROUTING",), "mangle": ("PREROUTING", "INPUT")}
"""Legacy tables whose chains see incoming packets before the filter table's INPUT does."""


def early_rules(table: str, save_output: str) -> list[str]:
    """What the `table` (raw or mangle) does to incoming packets before the bridge's rules: its
    PREROUTING/INPUT rules and any policy other than ACCEPT, as iptables-legacy-save prints them."""
    found = []
    for chain in EARLY_CHAINS[table]:
        for line in save_output.splitlines():
            if line.startswith(f":{chain} ") and not line.startswith(f":{chain} ACCEPT"):
                found.append(f"policy {line[1:].split(' [')[0]}")
            elif line.startswith(f"-A {chain} "):
                found.append(line)
    return found


def nft_input_hooks(chains_json: str) -> list[str]:
    """From `nft -j list chains`: the native nftables chains hooked where incoming packets pass
    (prerouting, input, ingress), as "family table chain (hook H, policy P)". Tables of
    iptables-nft (ip/ip6 filter, raw, mangle, nat, security) are left out: iptables-nft-save
    shows those. Returns [] for output it cannot read."""
    try:
        items = json.loads(chains_json).get("nftables", [])
    except (ValueError, AttributeError, RecursionError):
        return []
    xtables = {"filter", "raw", "mangle", "nat", "security"}
    found = []
    for item in items if isinstance(items, list) else []:
        chain = item.get("chain") if isinstance(item, dict) else None
        if not isinstance(chain, dict) or chain.get("hook") not in ("prerouting", "input", "ingress"):
            continue
        family, table = str(chain.get("family", "")), str(chain.get("table", ""))
        if family in ("ip", "ip6") and table in xtables:
            continue
        found.append(
            f"{family} {table} {chain.get('name', '')} (hook {chain['hook']}, policy {chain.get('policy', 'accept')})"
        )
    return found


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
_RULE_KEYS = ("family", "protocol", "action", "ports", "sources", "comment")
_TOP_KEYS = ("rules", "default_action")


def _kind(value: object) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _enum(kind: type[E], value: object, at: str) -> E:
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    choices = ", ".join(str(m.value) for m in kind)  # only for the error: a third of from_json's time
    if not isinstance(value, str):
        raise InvalidArgument(f"expected a string, one of {choices}; got {_kind(value)}", field=at)
    raise InvalidArgument(f"{value[:40]!r} is not one of {choices}", field=at)


def _port(value: object, at: str) -> PortRange:
    """80, "1000-2000" (or "1000:2000") or [1000, 2000]; nothing else (no floats, booleans or
    non-ASCII digits). The range itself is checked by validate()."""
    if isinstance(value, int) and not isinstance(value, bool):
        return PortRange(value, value)
    if isinstance(value, str) and (m := _PORT_TEXT.fullmatch(value)):
        return PortRange(int(m[1]), int(m[2] or m[1]))
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in value)
    ):
        return PortRange(value[0], value[1])
    raise InvalidArgument(f'expected 80, "1000-2000" or [1000, 2000], got {_kind(value)}', field=at)


def _key(name: str) -> str:
    """An unknown key as a path element: as is when it reads as one, else quoted."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name, re.ASCII) else json.dumps(name)


def _list(data: dict[str, object], key: str, at: str) -> list[object]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise InvalidArgument(f"expected a list, got {_kind(value)}", field=at)
    return value


class _Object(dict[str, object]):
    """A JSON object as loads() reads it, remembering the first key it saw twice."""

    duplicate: str | None = None


def _object(pairs: list[tuple[str, object]]) -> _Object:
    obj = _Object()
    for key, value in pairs:
        if key in obj and obj.duplicate is None:
            obj.duplicate = key
        obj[key] = value
    return obj


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def loads(raw: bytes, source: str, *, field: str | None = None) -> object:
    """Strict JSON from a file a person wrote: UTF-8 text, no NaN/Infinity, every failure
    (bad UTF-8, bad syntax, an integer over Python's 4300-digit limit, nesting deep enough to
    exhaust the stack) an InvalidArgument naming `source`. A key given twice is not decided
    here: from_json() refuses it naming its field (json keeps the last, silently)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"{source} is not UTF-8 text: {exc.reason} at byte {exc.start}", field=field) from None
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidArgument(f"{source} is nested too deeply to be a rule file", field=field) from None
    except ValueError as exc:  # JSONDecodeError, and int()'s digit limit
        raise InvalidArgument(f"{source} is not JSON: {str(exc)[:200]}", field=field) from None


def _unique(obj: dict[str, object], at: str) -> None:
    duplicate = getattr(obj, "duplicate", None)
    if duplicate is not None:
        path = f"{at}.{_key(duplicate[:40])}" if at else _key(duplicate[:40])
        raise InvalidArgument("this key is given twice (JSON would keep only the last)", field=path)


def from_json(data: object) -> RuleSet:
    """The one schema of a rule set in JSON (satctl's rule file, the factory file, the state
    file, the sandbox), strict about types as well as values; raises InvalidArgument naming the
    field in one path style (`rules[0].ports[1]`, `default_action`), never another error.

        {"default_action": "drop"|"accept"|"reject" (default drop),
         "rules": [{"family": "v4"|"v6"|"both" (default both),
                    "protocol": "tcp"|"udp"|"icmp"|"any", "action": "accept"|"drop"|"reject",
                    "ports": [80, "1000-2000", [1000, 2000], ...] (default []),
                    "sources": ["198.51.100.0/24", ...] (default []), "comment": "..." (default "")}]}
    """
    if not isinstance(data, dict):
        raise InvalidArgument(f"expected an object with rules and default_action, got {_kind(data)}", field="rules")
    _unique(data, "")
    unknown = sorted(str(k)[:40] for k in data if k not in _TOP_KEYS)
    if unknown:
        raise InvalidArgument(f"unknown keys {unknown}; expected {list(_TOP_KEYS)}", field=_key(unknown[0]))
    rules = []
    for i, r in enumerate(_list(data, "rules", "rules")):
        at = f"rules[{i}]"
        if not isinstance(r, dict):
            raise InvalidArgument(f"expected an object, got {_kind(r)}", field=at)
        _unique(r, at)
        unknown = sorted(str(k)[:40] for k in r if k not in _RULE_KEYS)
        if unknown:
            raise InvalidArgument(
                f"unknown keys {unknown}; expected {list(_RULE_KEYS)}", field=f"{at}.{_key(unknown[0])}"
            )
        for key in ("protocol", "action"):
            if key not in r:
                raise InvalidArgument("required", field=f"{at}.{key}")
        ports = tuple(_port(p, f"{at}.ports[{j}]") for j, p in enumerate(_list(r, "ports", f"{at}.ports")))
        sources = _list(r, "sources", f"{at}.sources")
        for j, source in enumerate(sources):
            if not isinstance(source, str):
                raise InvalidArgument(f"expected a CIDR string, got {_kind(source)}", field=f"{at}.sources[{j}]")
        comment = r.get("comment", "")
        if not isinstance(comment, str):
            raise InvalidArgument(f"expected a string, got {_kind(comment)}", field=f"{at}.comment")
        rules.append(
            Rule(
                family=_enum(Family, r.get("family", "both"), f"{at}.family"),
                protocol=_enum(Protocol, r["protocol"], f"{at}.protocol"),
                action=_enum(Action, r["action"], f"{at}.action"),
                ports=ports,
                sources=tuple(str(s) for s in sources),
                comment=comment,
            )
        )
        if len(rules) > MAX_RULES:
            raise InvalidArgument(f"at most {MAX_RULES} rules", field="rules")
    default = _enum(Action, data.get("default_action", "drop"), "default_action")
    return validate(RuleSet(tuple(rules), default))
