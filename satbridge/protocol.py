"""Protocol <-> core conversions that both sides need (the server and satctl).

Pure: protobuf messages in, core data out, and back. An unset enum names its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from satbridge.api.v1 import firewall_pb2
from satbridge.core import firewall as fw
from satbridge.errors import InvalidArgument

T = TypeVar("T")

_FAMILY = {firewall_pb2.IPV4: fw.Family.V4, firewall_pb2.IPV6: fw.Family.V6, firewall_pb2.BOTH: fw.Family.BOTH}
_PROTOCOL = {
    firewall_pb2.ANY: fw.Protocol.ANY,
    firewall_pb2.TCP: fw.Protocol.TCP,
    firewall_pb2.UDP: fw.Protocol.UDP,
    firewall_pb2.ICMP: fw.Protocol.ICMP,
}
_ACTION = {
    firewall_pb2.ACCEPT: fw.Action.ACCEPT,
    firewall_pb2.DROP: fw.Action.DROP,
    firewall_pb2.REJECT: fw.Action.REJECT,
}


def _pick(table: Mapping[Any, T], value: int, field: str, what: str) -> T:
    if value not in table:
        raise InvalidArgument(f"set a {what}", field=field)
    return table[value]


def rule_set(msg: firewall_pb2.FirewallRuleSet) -> fw.RuleSet:
    """Proto -> core; an unset enum names its field. Full validation follows in the service."""
    rules = []
    for i, r in enumerate(msg.rules):
        at = f"rules[{i}]"
        rules.append(
            fw.Rule(
                family=_pick(_FAMILY, r.family, f"{at}.family", "family (IPV4, IPV6 or BOTH)"),
                protocol=_pick(_PROTOCOL, r.protocol, f"{at}.protocol", "protocol (ANY, TCP, UDP or ICMP)"),
                action=_pick(_ACTION, r.action, f"{at}.action", "action (ACCEPT, DROP or REJECT)"),
                ports=tuple(fw.PortRange(p.first, p.last or p.first) for p in r.ports),
                sources=tuple(r.sources),
                comment=r.comment,
            )
        )
    default = _pick(_ACTION, msg.default_action, "default_action", "default action")
    return fw.RuleSet(tuple(rules), default)


def rule_set_msg(rules: fw.RuleSet) -> firewall_pb2.FirewallRuleSet:
    back_f = {v: k for k, v in _FAMILY.items()}
    back_p = {v: k for k, v in _PROTOCOL.items()}
    back_a = {v: k for k, v in _ACTION.items()}
    return firewall_pb2.FirewallRuleSet(
        rules=[
            firewall_pb2.FirewallRule(
                family=back_f[r.family],
                protocol=back_p[r.protocol],
                action=back_a[r.action],
                ports=[firewall_pb2.PortRange(first=p.first, last=p.last) for p in r.ports],
                sources=list(r.sources),
                comment=r.comment,
            )
            for r in rules.rules
        ],
        default_action=back_a[rules.default_action],
    )
