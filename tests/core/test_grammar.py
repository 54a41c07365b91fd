"""One grammar per input (issue 18, cases 4 and 5): ASCII only, every error names its field."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satbridge.core import firewall as fw
from satbridge.core.addresses import parse_listen
from satbridge.core.grammar import (
    HOST_NAME_MAX,
    check_domain,
    check_hostname,
    parse_port,
    parse_prefix,
    parse_seconds,
    parse_uint,
)
from satbridge.core.network import validate_static
from satbridge.errors import InvalidArgument

NOT_ASCII_DIGITS = ["²", "٢", "２", "𝟐", "¹", "⑵", "߂"]


@pytest.mark.parametrize("digit", NOT_ASCII_DIGITS)
def test_a_prefix_with_digits_that_are_not_ascii_names_the_field(digit):
    # Case 5: "192.0.2.10/2²" was a traceback (isdigit() true, int() fails).
    with pytest.raises(InvalidArgument) as exc:
        validate_static(f"192.0.2.10/2{digit}", "192.0.2.1", [])
    assert exc.value.field == "address"


@pytest.mark.parametrize("digit", NOT_ASCII_DIGITS)
def test_a_port_with_digits_that_are_not_ascii_names_the_field(digit):
    with pytest.raises(InvalidArgument) as exc:
        parse_listen(f"[::]:5005{digit}", field="--listen")
    assert exc.value.field == "--listen"


def test_a_hostname_the_kernel_would_refuse_is_invalid():
    # Case 4: 104 characters passed validation and came back INTERNAL from NetworkManager.
    name = ".".join(["a" * 20] * 5)[:104]
    with pytest.raises(InvalidArgument) as exc:
        check_hostname(name)
    assert exc.value.field == "hostname"
    longest = "a" * 30 + "." + "b" * 33
    assert check_hostname(longest) == longest
    with pytest.raises(InvalidArgument):
        check_hostname(longest + "b")
    assert check_domain(name, field="search[0]") == name  # a search domain may be longer


@given(st.text(max_size=30))
def test_parse_uint_accepts_exactly_ascii_decimal(text):
    try:
        value = parse_uint(text, field="n", lo=0, hi=10**12)
    except InvalidArgument as exc:
        assert exc.field == "n"  # noqa: PT017 - hypothesis: the outcome depends on the input
        assert not (text.isascii() and text.isdecimal() and len(text) <= 20 and int(text) <= 10**12)
    else:
        assert text.isascii()
        assert text.isdecimal()
        assert str(value) == text.lstrip("0").rjust(1, "0")


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_parse_uint_range(n):
    try:
        assert parse_uint(str(n), field="n", lo=1, hi=65535) == n
        assert 1 <= n <= 65535
    except InvalidArgument:
        assert not 1 <= n <= 65535


@given(st.text(max_size=12))
def test_parse_prefix_and_port_never_raise_anything_else(text):
    for parse in (lambda t: parse_prefix(t, field="f"), lambda t: parse_port(t, field="f")):
        try:
            parse(text)
        except InvalidArgument as exc:
            assert exc.field == "f"  # noqa: PT017 - hypothesis: the outcome depends on the input


@given(st.text(max_size=16))
def test_parse_seconds_is_finite_ascii(text):
    try:
        value = parse_seconds(text, field="--timeout", lo=1, hi=600)
    except InvalidArgument as exc:
        assert exc.field == "--timeout"  # noqa: PT017 - hypothesis: the outcome depends on the input
    else:
        assert text.isascii()
        assert 1 <= value <= 600


@pytest.mark.parametrize("text", ["nan", "inf", "1e3", "-1", "+5", " 5", "5 ", "1_0", "0x10", "", "٣٠"])
def test_parse_seconds_refuses(text):
    with pytest.raises(InvalidArgument):
        parse_seconds(text, field="--timeout", lo=1, hi=600)


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(st.lists(_LABEL, min_size=1, max_size=4))
def test_check_hostname_accepts_rfc1123_names_up_to_64(labels):
    name = ".".join(labels)
    if len(name) > HOST_NAME_MAX or name.replace(".", "").isdigit():
        with pytest.raises(InvalidArgument):
            check_hostname(name)
    else:
        assert check_hostname(name) == name


@given(st.text(max_size=80))
def test_check_hostname_result_is_ascii_and_short(text):
    try:
        name = check_hostname(text)
    except InvalidArgument as exc:
        assert exc.field == "hostname"  # noqa: PT017 - hypothesis: the outcome depends on the input
    else:
        assert name.isascii()
        assert 1 <= len(name) <= HOST_NAME_MAX
        assert not name.startswith("-")


# Red team 18, finding 9: addresses, the gateway and DNS took surrounding whitespace through
# .strip() (`$'192.0.2.10/2\n'` was accepted as /2) while host names refused it. One rule now:
# a value is taken as typed; surrounding whitespace, ASCII or Unicode, is refused naming the field.
SPACE = st.text(alphabet=st.characters(categories=("Zs", "Zl", "Zp", "Cc")).filter(str.isspace), min_size=1, max_size=3)
VALID = [
    ("address", lambda v: validate_static(v, None, []), "192.0.2.10/24"),
    ("gateway", lambda v: validate_static("192.0.2.10/24", v, []), "192.0.2.1"),
    ("dns[0]", lambda v: validate_static("192.0.2.10/24", None, [v]), "192.0.2.53"),
    ("search[0]", lambda v: validate_static("192.0.2.10/24", None, [], [v]), "example.com"),
    ("hostname", check_hostname, "satellite"),
    ("n", lambda v: parse_uint(v, field="n", lo=0, hi=100), "80"),
    ("s", lambda v: parse_seconds(v, field="s", lo=0, hi=100), "2.5"),
    ("--listen", lambda v: parse_listen(v, field="--listen"), "[::]:50051"),
]


@pytest.mark.parametrize(("field", "parse", "good"), VALID, ids=[v[0] for v in VALID])
@given(before=SPACE | st.just(""), after=SPACE | st.just(""))
def test_surrounding_whitespace_is_refused_everywhere_naming_the_field(field, parse, good, before, after):
    parse(good)  # the value itself is fine
    if not before and not after:
        return
    with pytest.raises(InvalidArgument) as exc:
        parse(before + good + after)
    assert exc.value.field == field


@pytest.mark.parametrize(("field", "parse", "good"), VALID, ids=[v[0] for v in VALID])
def test_an_empty_value_is_refused_naming_the_field(field, parse, good):
    with pytest.raises(InvalidArgument) as exc:
        parse("")
    assert exc.value.field == field


def test_the_address_with_a_newline_after_the_prefix_is_not_slash_2():
    with pytest.raises(InvalidArgument) as exc:
        validate_static("192.0.2.10/2\n", None, [])
    assert exc.value.field == "address"


@given(st.integers(min_value=0, max_value=65535), st.integers(min_value=1, max_value=3))
def test_numbers_have_no_leading_zeros_like_the_firewall_grammar(n, zeros):
    # parse_uint took "00080" while the firewall's rule grammar refused it.
    text = "0" * zeros + str(n)
    with pytest.raises(InvalidArgument):
        parse_port(text, field="port")
    with pytest.raises(InvalidArgument):
        fw.from_json({"rules": [{"protocol": "tcp", "action": "accept", "ports": [text]}]})
    assert parse_port(str(n), field="port") == n
