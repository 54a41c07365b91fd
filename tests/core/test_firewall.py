import pytest

from satbridge.core import firewall as fw
from satbridge.errors import InvalidArgument

TCP = fw.Protocol.TCP


def rule(**kw):
    base = {"family": fw.Family.BOTH, "protocol": TCP, "action": fw.Action.ACCEPT}
    base.update(kw)
    return fw.Rule(**base)


def rs(*rules, default=fw.Action.DROP):
    return fw.RuleSet(tuple(rules), default)


INVALID = [
    (rs(rule(family="v4")), "rules[0].family"),
    (rs(rule(protocol=None)), "rules[0].protocol"),
    (rs(rule(action="allow")), "rules[0].action"),
    (rs(default=None), "default_action"),
    (rs(rule(protocol=fw.Protocol.ICMP, ports=(fw.PortRange(80, 80),))), "rules[0].ports"),
    (rs(rule(protocol=fw.Protocol.ANY, ports=(fw.PortRange(80, 80),))), "rules[0].ports"),
    (rs(rule(ports=(fw.PortRange(0, 0),))), "rules[0].ports[0]"),
    (rs(rule(ports=(fw.PortRange(80, 65536),))), "rules[0].ports[0]"),
    (rs(rule(ports=(fw.PortRange(2000, 1000),))), "rules[0].ports[0]"),
    (rs(rule(ports=tuple(fw.PortRange(p, p) for p in range(1, 17)))), "rules[0].ports"),
    (rs(rule(ports=tuple(fw.PortRange(p, p + 1) for p in range(1, 20, 2)))), "rules[0].ports"),
    (rs(rule(sources=("198.51.100.0/33",))), "rules[0].sources[0]"),
    (rs(rule(sources=("198.51.100.1/24",))), "rules[0].sources[0]"),  # host bits set
    (rs(rule(sources=("not-an-address",))), "rules[0].sources[0]"),
    (rs(rule(family=fw.Family.V4, sources=("2001:db8::/32",))), "rules[0].sources[0]"),
    (rs(rule(family=fw.Family.V6, sources=("198.51.100.0/24",))), "rules[0].sources[0]"),
    (rs(rule(sources=tuple(f"198.51.100.{i}/32" for i in range(65)))), "rules[0].sources"),
    (rs(rule(comment='say "hi"')), "rules[0].comment"),
    (rs(rule(comment="x" * 201)), "rules[0].comment"),
    (rs(rule(comment="tab\there")), "rules[0].comment"),
    (rs(rule(), rule(ports=(fw.PortRange(5, 4),))), "rules[1].ports[0]"),
    (rs(*(rule() for _ in range(fw.MAX_RULES + 1))), "rules"),
]


@pytest.mark.parametrize(("rules", "field"), INVALID, ids=[f for _, f in INVALID])
def test_invalid_rule_sets_name_the_field(rules, field):
    assert len(INVALID) >= 15
    with pytest.raises(InvalidArgument) as exc:
        fw.validate(rules)
    assert exc.value.field == field


def test_base_chain_comes_first_and_keeps_the_bridge_ports():
    plan = fw.plan(rs(rule(action=fw.Action.DROP)), (50051, 50052))
    lines = plan.save_lines("v4")
    assert lines[0] == "-A SATBRIDGE-IN -i lo -j ACCEPT"
    assert lines[1] == "-A SATBRIDGE-IN -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    assert "--dports 50051,50052" in lines[2]
    assert lines[3].startswith("-A SATBRIDGE-IN -p icmp -m icmp --icmp-type 8 -m limit")
    assert lines[4:6] == ["-A SATBRIDGE-IN -j SATBRIDGE-XCC", "-A SATBRIDGE-IN -j DROP"]
    assert lines[6] == "-A SATBRIDGE-XCC -p tcp -j DROP"


def test_ipv6_keeps_neighbour_discovery_and_rejects_with_icmp6():
    lines = fw.plan(rs(default=fw.Action.REJECT), (1, 2)).save_lines("v6")
    for icmp_type in ("133", "134", "135", "136"):
        assert f"-A SATBRIDGE-IN -p ipv6-icmp -m icmp6 --icmpv6-type {icmp_type} -j ACCEPT" in lines
    assert lines[-1] == "-A SATBRIDGE-IN -j REJECT --reject-with icmp6-port-unreachable"


def test_rules_split_by_family_of_their_sources():
    rules = fw.validate(
        rs(
            rule(
                sources=("198.51.100.0/24", "2001:db8::/32"),
                ports=(fw.PortRange(5060, 5060), fw.PortRange(10000, 20000)),
                comment="sip and rtp",
            ),
            rule(family=fw.Family.V6, protocol=fw.Protocol.ICMP),
        )
    )
    plan = fw.plan(rules, (50051, 50052))
    v4 = [line for line in plan.save_lines("v4") if "XCC -" in line]
    v6 = [line for line in plan.save_lines("v6") if "XCC -" in line]
    assert v4 == [
        "-A SATBRIDGE-XCC -s 198.51.100.0/24 -p tcp -m multiport --dports 5060,10000:20000 "
        '-m comment --comment "sip and rtp" -j ACCEPT'
    ]
    assert v6 == [
        "-A SATBRIDGE-XCC -s 2001:db8::/32 -p tcp -m multiport --dports 5060,10000:20000 "
        '-m comment --comment "sip and rtp" -j ACCEPT',
        "-A SATBRIDGE-XCC -p ipv6-icmp -j ACCEPT",
    ]


def test_comment_quoting_follows_iptables_save():
    assert fw.save_string("a_b-9") == "a_b-9"
    assert fw.save_string("x.y") == '"x.y"'
    assert fw.save_string("a b") == '"a b"'


def test_expected_lines_put_the_jump_first():
    plan = fw.plan(rs(), (1, 2))
    lines = fw.expected_lines(plan, "v4")
    assert lines[0] == "-A INPUT -j SATBRIDGE-IN"
    assert (
        fw.bridge_lines("\n".join(["*filter", ":INPUT ACCEPT [0:0]", *lines, "-A OUTPUT -j ACCEPT", "COMMIT"])) == lines
    )


def test_json_round_trip_and_friendly_ports():
    data = {
        "default_action": "reject",
        "rules": [
            {"protocol": "udp", "action": "accept", "ports": [5060, "10000-20000", [30000, 30010]], "sources": []}
        ],
    }
    rules = fw.from_json(data)
    assert rules.rules[0].ports == (fw.PortRange(5060, 5060), fw.PortRange(10000, 20000), fw.PortRange(30000, 30010))
    assert rules.rules[0].family is fw.Family.BOTH
    assert fw.from_json(fw.to_json(rules)) == rules


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"rules": [{"protocol": "sctp", "action": "accept"}]}, "rules[0].protocol"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "ports": ["http"]}]}, "rules[0].ports[0]"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "colour": "red"}]}, "rules[0].colour"),
        ({"rules": "all"}, "rules"),
        ({"default_action": "maybe"}, "default_action"),
    ],
)
def test_json_errors_name_the_field(data, field):
    with pytest.raises(InvalidArgument) as exc:
        fw.from_json(data)
    assert exc.value.field == field
