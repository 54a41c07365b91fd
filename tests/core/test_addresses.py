import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satbridge.core.addresses import ListenAddress, parse_listen, reachable_addresses
from satbridge.core.status import Address
from satbridge.errors import InvalidArgument


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("[::]:50051", "::", 50051), ("0.0.0.0:1", "0.0.0.0", 1), ("localhost:0", "localhost", 0), ("[::1]:9", "::1", 9)],
)
def test_good(text, host, port):
    assert parse_listen(text, field="f") == ListenAddress(host, port)


def test_round_trip_brackets_v6():
    assert str(ListenAddress("::", 50051)) == "[::]:50051"
    assert str(ListenAddress("127.0.0.1", 1)) == "127.0.0.1:1"


@pytest.mark.parametrize("bad", ["50051", ":50051", "::1:5", "[::1]5", "[zz]:5", "host:65536", "host:-1", "host:x"])
def test_bad_names_the_field(bad):
    with pytest.raises(InvalidArgument) as exc:
        parse_listen(bad, field="server.listen")
    assert exc.value.field == "server.listen"


HOST = [
    Address("lo", "127.0.0.1", 8),
    Address("eth0", "192.0.2.2", 24),
    Address("lo", "::1", 128),
    Address("eth0", "2001:db8::2", 64),
    Address("eth0", "fe80::1", 64),
]


@pytest.mark.parametrize(
    ("pairing", "management", "shown"),
    [
        ("::", "::", ["192.0.2.2", "2001:db8::2"]),
        ("", "", ["192.0.2.2", "2001:db8::2"]),
        ("0.0.0.0", "::", ["192.0.2.2"]),
        ("127.0.0.1", "127.0.0.1", ["127.0.0.1"]),  # `make run`: only where it listens, never the host's others
        ("192.0.2.2", "::", ["192.0.2.2"]),
        ("0.0.0.0", "127.0.0.1", ["127.0.0.1"]),  # pairing everywhere, management on loopback only
        ("::", "192.0.2.9", []),  # no address reaches both ports
        ("localhost", "localhost", ["localhost"]),
    ],
)
def test_reachable_addresses_reach_both_ports(pairing, management, shown):
    listens = [ListenAddress(pairing, 50052), ListenAddress(management, 50051)]
    assert reachable_addresses(listens, HOST) == shown


addresses = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str)).map(lambda a: Address("if", a, 64))
listen_hosts = st.sampled_from(["::", "0.0.0.0", "", "127.0.0.1", "2001:db8::9", "192.0.2.2"])


@given(st.lists(addresses, max_size=8), listen_hosts, listen_hosts)
def test_reachable_addresses_never_name_an_unreachable_one(host, pairing, management):
    listens = [ListenAddress(pairing, 1), ListenAddress(management, 2)]
    shown = reachable_addresses(listens, host)
    assert len(shown) == len(set(shown))
    for text in shown:
        ip = ipaddress.ip_address(text)
        assert not ip.is_link_local
        for listen in listens:  # each port is reachable there
            if listen.host in ("::", ""):
                assert text in {a.address for a in host}
            elif listen.host == "0.0.0.0":
                assert ip.version == 4
                assert text in {a.address for a in host}
            else:
                assert text == listen.host
        assert not ip.is_loopback or text in (pairing, management)
