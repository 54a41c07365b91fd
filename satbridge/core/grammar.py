"""One grammar per typed input, ASCII only, shared by the CLI, the console, the RPCs and the
sandbox adapters (so the sandbox accepts exactly what the real adapters accept).

Python's own parsers are too generous for input a person types: `int()` takes Arabic-Indic
and fullwidth digits, `1_000`, signs and surrounding whitespace; `str.isdigit()` is true for
`²`, which `int()` then refuses with a ValueError (a traceback, not an answer). Every parser
here takes plain ASCII and raises InvalidArgument naming the field.

One rule for every value: it is taken exactly as typed. Surrounding whitespace (a space, a
tab, a newline from `$'...\\n'` or a here-string, a Unicode space) is refused, never stripped,
so `192.0.2.10/2\\n` is not quietly /2 and a name and an address behave alike; an empty value
is refused naming its field (it never means "the default"). Numbers have no leading zeros
(`0` itself is fine), as in the firewall's rule grammar: `00080` is refused everywhere.
"""

from __future__ import annotations

import re

from satbridge.errors import InvalidArgument

_DIGITS = re.compile(r"0|[1-9][0-9]{0,19}", re.ASCII)
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,9})?", re.ASCII)
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)", re.ASCII)

HOST_NAME_MAX = 64
"""The kernel's limit on a host name (hostname(7), sethostname(2)); NetworkManager refuses more
with InvalidHostname."""
DOMAIN_MAX = 253
"""A DNS name in text form, without the final dot (RFC 1035 §2.3.4)."""


def parse_uint(text: str, *, field: str, lo: int, hi: int, what: str = "a number") -> int:
    """`text` as an integer lo..hi written in ASCII decimal digits (no sign, space, `_` or
    leading zero)."""
    if not _DIGITS.fullmatch(text) or not lo <= int(text) <= hi:
        raise InvalidArgument(f"{what} must be {lo}..{hi} in digits 0-9, got {text!r}", field=field)
    return int(text)


def parse_seconds(text: str, *, field: str, lo: float, hi: float) -> float:
    """A duration in seconds: ASCII decimal, e.g. `30` or `2.5`; no `nan`, `inf`, sign or exponent."""
    if not _DECIMAL.fullmatch(text) or not lo <= float(text) <= hi:
        raise InvalidArgument(f"seconds must be {lo:g}..{hi:g}, written like 30 or 2.5, got {text!r}", field=field)
    return float(text)


def parse_prefix(text: str, *, field: str, bits: int = 32) -> int:
    """An address prefix length 1..bits (IPv4: 32)."""
    return parse_uint(text, field=field, lo=1, hi=bits, what="the prefix")


def parse_port(text: str, *, field: str, allow_zero: bool = True) -> int:
    """A TCP port 0..65535 (0 = let the kernel pick), or 1..65535."""
    return parse_uint(text, field=field, lo=0 if allow_zero else 1, hi=65535, what="the port")


def check_domain(name: str, *, field: str, limit: int = DOMAIN_MAX) -> str:
    """RFC 1123 name: dot-separated labels of 1..63 ASCII letters, digits and inner hyphens,
    at most `limit` characters in all, not all digits (that is an address). Returns it lower-cased."""
    if not name or len(name) > limit or not name.isascii() or not all(_LABEL.fullmatch(p) for p in name.split(".")):
        raise InvalidArgument(
            f"a name is 1..{limit} characters: labels of 1..63 letters, digits and inner hyphens (a-z, 0-9, -),"
            " separated by dots",
            field=field,
        )
    if name.replace(".", "").isdigit():
        raise InvalidArgument("a name cannot be all digits", field=field)
    return name.lower()


def check_hostname(name: str, *, field: str = "hostname") -> str:
    """The satellite's host name: an RFC 1123 name of at most HOST_NAME_MAX (64) characters."""
    return check_domain(name, field=field, limit=HOST_NAME_MAX)
