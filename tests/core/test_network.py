import socket
import struct

import pytest

from satbridge.core.network import check_hostname, connection_settings, ipv4_settings, validate_static
from satbridge.errors import InvalidArgument

BAD = [
    (("192.0.2.10", "192.0.2.1", []), "address"),  # no prefix
    (("192.0.2.10/0", "192.0.2.1", []), "address"),
    (("192.0.2.10/33", "192.0.2.1", []), "address"),
    (("192.0.2.300/24", "192.0.2.1", []), "address"),
    (("192.0.2.0/24", "192.0.2.1", []), "address"),  # network address
    (("192.0.2.255/24", "192.0.2.1", []), "address"),  # broadcast address
    (("224.0.0.5/24", None, []), "address"),  # multicast
    (("127.0.0.2/8", None, []), "address"),  # loopback
    (("169.254.1.1/16", None, []), "address"),  # link-local
    (("192.0.2.10/24", "198.51.100.1", []), "gateway"),  # outside the subnet
    (("192.0.2.10/24", "192.0.2.10", []), "gateway"),  # itself
    (("192.0.2.10/24", "192.0.2.255", []), "gateway"),  # broadcast
    (("192.0.2.10/24", "gateway", []), "gateway"),
    (("192.0.2.10/24", "192.0.2.1", ["192.0.2.53", "192.0.2.53"]), "dns[1]"),  # duplicate
    (("192.0.2.10/24", "192.0.2.1", ["dns.example"]), "dns[0]"),
    (("192.0.2.10/24", "192.0.2.1", ["0.0.0.0"]), "dns[0]"),
    (("192.0.2.10/24", "192.0.2.1", ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]), "dns"),
]


@pytest.mark.parametrize(("args", "field"), BAD, ids=[f"{a[0]}-{f}" for a, f in BAD])
def test_bad_static_settings_name_the_field(args, field):
    assert len(BAD) >= 10
    with pytest.raises(InvalidArgument) as exc:
        validate_static(*args)
    assert exc.value.field == field


@pytest.mark.parametrize("name", ["", "-lead", "trail-", "a" * 64, "under_score", "dot.", "1234", "sp ace", "x" * 254])
def test_bad_hostnames(name):
    with pytest.raises(InvalidArgument) as exc:
        check_hostname(name)
    assert exc.value.field == "hostname"


def test_good_settings_and_search_domains():
    s = validate_static("192.0.2.10/24", "192.0.2.1", ["192.0.2.53"], ["example.com"])
    assert str(s.address) == "192.0.2.10/24"
    assert check_hostname("Sat-01.example.com") == "sat-01.example.com"
    with pytest.raises(InvalidArgument) as exc:
        validate_static("192.0.2.10/24", None, [], ["bad_domain"])
    assert exc.value.field == "search[0]"
    assert validate_static("192.0.2.10/31", None, []).address.ip.exploded == "192.0.2.10", "/31 has no broadcast"


def test_the_whole_ipv4_section_is_sent():
    static = ipv4_settings(validate_static("192.0.2.10/24", "192.0.2.1", ["192.0.2.53"]))
    assert static["method"] == ("s", "manual")
    assert static["address-data"] == ("aa{sv}", [{"address": ("s", "192.0.2.10"), "prefix": ("u", 24)}])
    assert static["dns"] == ("au", [struct.unpack("=I", socket.inet_aton("192.0.2.53"))[0]])
    assert static["gateway"] == ("s", "192.0.2.1")
    dhcp = ipv4_settings(None)
    assert dhcp["method"] == ("s", "auto")
    assert dhcp["address-data"] == ("aa{sv}", []), "stale static addresses are cleared"
    assert dhcp["dns"] == ("au", [])
    profile = connection_settings("satbridge-eth0", "u-1", "eth0", None)
    assert profile["connection"]["interface-name"] == ("s", "eth0")
