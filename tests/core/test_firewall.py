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


def test_each_port_share_is_refused_with_a_reset_before_the_ports_are_accepted():
    """Issue 16: one source's share of each bridge port, ahead of their ACCEPT and behind
    ESTABLISHED (only new connections count); /32 for IPv4, /64 for IPv6; 0 is no share."""
    ports = (fw.BridgePort(50051, 32), fw.BridgePort(50052, 16), fw.BridgePort(7, 0))
    for family, mask in (("v4", 32), ("v6", 64)):
        lines = fw.plan(rs(), ports).save_lines(family)
        assert lines[1].endswith("--ctstate RELATED,ESTABLISHED -j ACCEPT")
        assert lines[2:4] == [
            f"-A SATBRIDGE-IN -p tcp -m tcp --dport {port} -m connlimit --connlimit-above {n} "
            f"--connlimit-mask {mask} --connlimit-saddr -j REJECT --reject-with tcp-reset"
            for port, n in ((50051, 32), (50052, 16))
        ]
        assert "--dports 50051,50052,7 " in lines[4]
    assert fw.plan(rs(), (50051, 50052)).save_lines("v4") == fw.plan(
        rs(), (fw.BridgePort(50051), fw.BridgePort(50052))
    ).save_lines("v4")


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


# -- issue 15 ---------------------------------------------------------------------------------

import ipaddress  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.firewall_strategies import rule_sets, v4_networks, v6_networks  # noqa: E402


def test_a_comment_starting_with_bang_is_refused_at_validation():
    """Item 2: python-iptables read the `!` as "not" and the apply failed with INTERNAL."""
    with pytest.raises(InvalidArgument) as exc:
        fw.validate(rs(rule(comment="!important")))
    assert exc.value.field == "rules[0].comment"
    assert fw.validate(rs(rule(comment="important!"))).rules[0].comment == "important!"


@pytest.mark.parametrize(
    ("source", "printed"),
    [
        ("0.0.0.0/0", ""),
        ("::/0", ""),
        ("::ffff:1.2.3.4/128", "::ffff:1.2.3.4/128"),
        ("::ffff:102:304/128", "::ffff:1.2.3.4/128"),
        ("::102:304/128", "::1.2.3.4/128"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("198.51.100.7", "198.51.100.7/32"),
    ],
)
def test_sources_plan_as_the_kernel_prints_them(source, printed):
    """Item 3: a /0 has no `-s` in iptables-save, so the plan never equalled the kernel."""
    family = fw.Family.V6 if ":" in source else fw.Family.V4
    plan = fw.plan(fw.validate(rs(rule(family=family, sources=(source,)))), (1, 2))
    xcc = [s for s in plan.chains["v6" if ":" in source else "v4"] if s.chain == fw.XCC_CHAIN]
    assert [s.src for s in xcc] == [printed]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 2**128 - 1) | st.integers(0, 2**32 - 1) | st.integers(0, 2**32 - 1).map(lambda a: 0xFFFF << 32 | a)
)
def test_ipv6_text_is_glibc_inet_ntop(address):
    packed = address.to_bytes(16, "big")
    assert fw._ntop6(packed) == socket.inet_ntop(socket.AF_INET6, packed)


@settings(max_examples=200, deadline=None)
@given(st.lists(v4_networks() | v6_networks(), min_size=1, max_size=8))
def test_kernel_text_reads_back_as_the_same_network(sources):
    for source in sources:
        text = fw.kernel_text(source)
        net = ipaddress.ip_network(source)
        assert (text == "") == (net.prefixlen == 0)
        if text:
            assert ipaddress.ip_network(text) == net


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"rules": [{"protocol": "tcp", "action": "accept", "ports": "443"}]}, "rules[0].ports"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "ports": 443}]}, "rules[0].ports"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "ports": {"443": 1}}]}, "rules[0].ports"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "ports": None}]}, "rules[0].ports"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "ports": [443.0]}]}, "rules[0].ports[0]"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "ports": [True]}]}, "rules[0].ports[0]"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "ports": ["²"]}]}, "rules[0].ports[0]"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "ports": ["٤٤٣"]}]}, "rules[0].ports[0]"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "ports": [[1, True]]}]}, "rules[0].ports[0]"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "ports": ["1-2-3"]}]}, "rules[0].ports[0]"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "sources": "10.0.0.0/8"}]}, "rules[0].sources"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "sources": [10]}]}, "rules[0].sources[0]"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "sources": ["fe80::%eth0/64"]}]}, "rules[0].sources[0]"),
        (
            {"rules": [{"protocol": "tcp", "action": "accept", "sources": ["10.0.0.0/255.0.0.0"]}]},
            "rules[0].sources[0]",
        ),
        ({"rules": [{"protocol": "tcp", "action": "accept", "sources": ["１0.0.0.0/8"]}]}, "rules[0].sources[0]"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "comment": 5}]}, "rules[0].comment"),
        ({"rules": [{"protocol": ["tcp"], "action": "accept"}]}, "rules[0].protocol"),
        ({"rules": [{"protocol": "tcp", "action": None}]}, "rules[0].action"),
        ({"rules": [{"protocol": "tcp"}]}, "rules[0].action"),
        ({"rules": [{"protocol": "tcp", "action": "accept", "family": 4}]}, "rules[0].family"),
        ({"rules": [None]}, "rules[0]"),
        ({"rules": None}, "rules"),
        ({"rules": [], "default_action": 1}, "default_action"),
        ({"rules": [], "default": "drop"}, "default"),
        ([], "rules"),
        ("rules", "rules"),
        (None, "rules"),
    ],
)
def test_the_schema_is_strict_about_types_and_names_the_field(data, field):
    """Item 4 (`"ports": "443"` was applied as --dports 4,4,3) and item 7 (one path style)."""
    with pytest.raises(InvalidArgument) as exc:
        fw.from_json(data)
    assert exc.value.field == field


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_any_json_value_is_a_rule_set_or_an_invalid_argument(data):
    for doc in (
        data,
        {"rules": data},
        {"rules": [data]},
        {"rules": [{"protocol": "tcp", "action": "accept", "ports": data}]},
    ):
        try:
            fw.from_json(doc)
            field = "accepted"
        except InvalidArgument as exc:
            field = exc.field or ""
        assert field


@settings(max_examples=200, deadline=None)
@given(rule_sets())
def test_every_valid_set_round_trips_through_json(rules):
    try:
        valid = fw.validate(rules)
    except InvalidArgument:
        return
    assert fw.from_json(json.loads(json.dumps(fw.to_json(valid)))) == valid
    assert fw.validate(valid) == valid


def test_a_set_too_big_for_the_kernel_budget_is_refused_naming_the_limit():
    """Item 5: 2000 rules x 64 IPv6 sources was applied, then satctl could not receive it."""
    sources = tuple(f"2001:db8:{i:x}::/48" for i in range(64))
    big = rs(*(rule(family=fw.Family.V6, sources=sources) for _ in range(fw.MAX_RULES)))
    with pytest.raises(InvalidArgument) as exc:
        fw.validate(big)
    assert exc.value.field == "rules"
    assert "MAX_KERNEL_RULES" in str(exc.value)


def largest_accepted_set() -> fw.RuleSet:
    """The biggest answer an accepted set can make: longest comment, 15 port entries, longest
    source texts, spending the kernel budget of both families."""
    per_rule = fw.MAX_KERNEL_RULES // fw.MAX_RULES
    v6 = [f"ffff:ffff:ffff:ffff:ffff:ffff:ffff:{i:04x}/128" for i in range(fw.MAX_KERNEL_RULES)]
    v4 = [f"198.{i // 256 % 256}.{i % 256}.255/32" for i in range(fw.MAX_KERNEL_RULES)]
    return fw.validate(
        rs(
            *(
                rule(
                    ports=tuple(fw.PortRange(60000 + p, 60000 + p) for p in range(fw.MAX_PORT_ENTRIES)),
                    sources=tuple(v6[i * per_rule : (i + 1) * per_rule] + v4[i * per_rule : (i + 1) * per_rule]),
                    comment="x" * fw.MAX_COMMENT,
                )
                for i in range(fw.MAX_RULES)
            )
        )
    )


def test_the_largest_accepted_set_fits_satctls_default_message_size():
    from satbridge.api.v1 import firewall_pb2
    from satbridge.protocol import rule_set_msg

    biggest = largest_accepted_set()
    assert fw.kernel_rules(biggest) == {"v4": fw.MAX_KERNEL_RULES, "v6": fw.MAX_KERNEL_RULES}
    answer = firewall_pb2.FirewallState(rules=rule_set_msg(biggest), revision=2**63, warnings=["w" * 4096] * 8)
    assert answer.ByteSize() < 4 * 1024 * 1024 // 2, "half of gRPC's default 4 MiB receive limit at most"


def test_foreign_input_rules_are_split_by_the_jump():
    save = "\n".join(
        [
            "*filter",
            ":INPUT ACCEPT [0:0]",
            "-A INPUT -s 203.0.113.5/32 -j ACCEPT",
            fw.JUMP_LINE,
            "-A INPUT -j LOG",
            "COMMIT",
        ]
    )
    assert fw.foreign_input_rules(save) == (["-A INPUT -s 203.0.113.5/32 -j ACCEPT"], ["-A INPUT -j LOG"])


# -- red team of issue 15: one ASCII grammar, refused rather than normalised ------------------

PADDING = [" ", "\t", "\n", "\r", "\u00a0", "\u2003", "\ufeff", "\x00"]


def one_rule(**over: object) -> dict[str, object]:
    r: dict[str, object] = {"protocol": "tcp", "action": "accept"}
    r.update(over)
    return {"rules": [r]}


@pytest.mark.parametrize("pad", PADDING)
@pytest.mark.parametrize("where", ["before", "after"])
def test_padded_sources_and_ports_are_both_refused(pad, where):
    """Sources were stripped (NBSP, newline, tab too) while " 443" as a port was refused."""
    source = f"{pad}198.51.100.0/24" if where == "before" else f"198.51.100.0/24{pad}"
    port = f"{pad}443" if where == "before" else f"443{pad}"
    with pytest.raises(InvalidArgument) as exc:
        fw.from_json(one_rule(sources=[source]))
    assert exc.value.field == "rules[0].sources[0]"
    with pytest.raises(InvalidArgument) as exc:
        fw.from_json(one_rule(ports=[port]))
    assert exc.value.field == "rules[0].ports[0]"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (one_rule(sources=["198.51.100.0/024"]), "rules[0].sources[0]"),
        (one_rule(sources=["2001:db8::/032"]), "rules[0].sources[0]"),
        (one_rule(sources=["198.51.100.0/00"]), "rules[0].sources[0]"),
        (one_rule(ports=["00080"]), "rules[0].ports[0]"),
        (one_rule(ports=["080-90"]), "rules[0].ports[0]"),
        (one_rule(ports=["80-090"]), "rules[0].ports[0]"),
        (one_rule(ports=["+80"]), "rules[0].ports[0]"),
        (one_rule(ports=[10**4000]), "rules[0].ports[0]"),
        (one_rule(ports=[[1, 10**4000]]), "rules[0].ports[0]"),
    ],
)
def test_leading_zeros_and_huge_numbers_are_refused_naming_the_field(data, field):
    """ "1.2.3.4/024" was read as /24 and "00080" as 80; a 4000-digit port could not even be
    printed in the error."""
    with pytest.raises(InvalidArgument) as exc:
        fw.from_json(data)
    assert exc.value.field == field
    assert len(str(exc.value)) < 400


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"rules": [], "rules": []}', "rules"),
        ('{"default_action": "accept", "rules": [], "default_action": "drop"}', "default_action"),
        ('{"rules": [{"protocol": "tcp", "action": "accept", "action": "drop"}]}', "rules[0].action"),
        ('{"rules": [{"protocol": "tcp", "action": "drop", "ports": [1], "ports": [2]}]}', "rules[0].ports"),
    ],
)
def test_a_key_given_twice_is_refused_naming_the_field(text, field):
    """JSON keeps the last of two equal keys, silently: a rule file saying both is a mistake."""
    with pytest.raises(InvalidArgument) as exc:
        fw.from_json(fw.loads(text.encode(), "rules.json"))
    assert exc.value.field == field
    assert "twice" in str(exc.value)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"rules": [{"protocol": "tcp", "action": "accept", "ports": [' + b"9" * 5000 + b"]}]}",
        b"[" * 50_000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"rules": [], "x": NaN}',
        b'{"rules": [], "x": -Infinity}',
        b"\xef\xbb\xbf{}",
        b"\xff\xfe{}",
        b"",
        b"{} {}",
    ],
)
def test_loads_turns_every_parse_failure_into_invalid_argument_naming_the_source(raw):
    with pytest.raises(InvalidArgument) as exc:
        fw.loads(raw, "the-file.json", field="FILE")
    assert exc.value.field == "FILE"
    assert "the-file.json" in str(exc.value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_json_or_an_invalid_argument(raw):
    _, exc = outcome(lambda: fw.loads(raw, "the-file"))
    assert exc is None or "the-file" in str(exc)


def outcome(call):
    """(value, None) or (None, the InvalidArgument): anything else propagates and fails."""
    try:
        return call(), None
    except InvalidArgument as exc:
        return None, exc


PORT_GRAMMAR = r"(0|[1-9][0-9]{0,4})([-:](0|[1-9][0-9]{0,4}))?"


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=14) | st.from_regex(PORT_GRAMMAR, fullmatch=True))
def test_a_port_string_is_accepted_exactly_when_it_is_plain_ascii_digits_in_range(text):
    import re

    rules, exc = outcome(lambda: fw.from_json(one_rule(ports=[text])))
    m = re.fullmatch(PORT_GRAMMAR, text, re.ASCII)
    if exc is not None:
        assert exc.field == "rules[0].ports[0]"
        assert not m or not (1 <= int(m[1]) <= int(m[3] or m[1]) <= 65535)
        return
    ports = rules.rules[0].ports
    assert m, f"accepted outside the grammar: {text!r}"
    first, last = int(m[1]), int(m[3] or m[1])
    assert ports == (fw.PortRange(first, last),)


@settings(max_examples=400, deadline=None)
@given(
    v4_networks() | v6_networks(),
    st.text(max_size=2),
    st.text(max_size=2),
)
def test_a_source_is_accepted_only_as_written_in_ascii_without_padding(network, before, after):
    text = f"{before}{network}{after}"
    rules, exc = outcome(lambda: fw.from_json(one_rule(sources=[text])))
    if exc is not None:
        assert exc.field == "rules[0].sources[0]"
        assert text != network, f"a canonical network was refused: {text!r}"
        return
    (source,) = rules.rules[0].sources
    import re

    assert re.fullmatch(r"[0-9A-Fa-f:.]+(/(0|[1-9][0-9]*))?", text, re.ASCII), repr(text)
    assert ipaddress.ip_network(source) == ipaddress.ip_network(text)


# -- red team of issue 15: bounded warnings, what else filters ---------------------------------


def test_warnings_name_the_first_few_and_count_the_rest():
    lines = [f"-A INPUT -s 203.0.113.{i % 256}/32 -m comment --comment {'x' * 500} -j ACCEPT" for i in range(9000)]
    text = fw.name_some(lines)
    assert text.endswith("; and 8990 more")
    assert len(text) <= fw.MAX_NAMED * (fw.MAX_LINE + 2) + 30
    assert fw.name_some(["a", "b"]) == "a; b"
    bounded = fw.bound_warnings([text * 10] * 100)
    assert len(bounded) == fw.MAX_WARNINGS
    assert all(len(w) <= fw.MAX_WARNING for w in bounded)
    assert bounded[-1] == f"{100 - fw.MAX_WARNINGS + 1} more warnings not shown"
    assert fw.bound_warnings(["a", "b"]) == ("a", "b")


def test_the_jump_is_first_only_when_inputs_first_rule_is_it():
    assert fw.jump_is_first("*filter\n-A INPUT -j SATBRIDGE-IN\n-A INPUT -s 1.2.3.4/32 -j ACCEPT\n")
    assert not fw.jump_is_first("-A INPUT -s 1.2.3.4/32 -j ACCEPT\n-A INPUT -j SATBRIDGE-IN\n")
    assert not fw.jump_is_first("-A OUTPUT -j ACCEPT\n")
    assert fw.other_jumps("-A INPUT -i eth0 -j SATBRIDGE-IN\n")
    assert not fw.other_jumps("-A INPUT -j SATBRIDGE-IN\n-A INPUT -j SATBRIDGE-INX\n")


def test_early_tables_report_their_rules_and_policies():
    raw = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n-A PREROUTING -s 203.0.113.10/32 -j DROP\nCOMMIT\n"
    assert fw.early_rules("raw", raw) == ["-A PREROUTING -s 203.0.113.10/32 -j DROP"]
    mangle = "*mangle\n:PREROUTING DROP [0:0]\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\n-A FORWARD -j DROP\nCOMMIT\n"
    assert fw.early_rules("mangle", mangle) == ["policy PREROUTING DROP", "-A INPUT -j DROP"]
    assert fw.early_rules("raw", "*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n") == []


def test_native_nft_chains_on_input_are_named_and_iptables_nft_ones_left_to_its_save():
    chains = {
        "nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"chain": {"family": "inet", "table": "rt15", "name": "in", "hook": "input", "policy": "accept"}},
            {"chain": {"family": "ip", "table": "filter", "name": "INPUT", "hook": "input", "policy": "accept"}},
            {"chain": {"family": "ip6", "table": "mine", "name": "pre", "hook": "prerouting", "policy": "drop"}},
            {"chain": {"family": "inet", "table": "t", "name": "out", "hook": "output"}},
            {"chain": {"family": "inet", "table": "t", "name": "regular"}},
        ]
    }
    assert fw.nft_input_hooks(json.dumps(chains)) == [
        "inet rt15 in (hook input, policy accept)",
        "ip6 mine pre (hook prerouting, policy drop)",
    ]
    for junk in ("", "[]", "null", '{"nftables": 5}', '{"nftables": [1, {"chain": 2}]}'):
        assert fw.nft_input_hooks(junk) == []
