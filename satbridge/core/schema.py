"""The schema of the JSON state files: small checks each state file's parser is built from.

Every check raises ValueError or TypeError naming the key, which the one loader
(system/files.load_json) turns into damage. Numbers are finite and in a range the code that
reads them can handle (a time stamp a datetime can show, a count that fits in 64 bits), so
no `1e309`, NaN or `-1e300` gets past the loader to crash a caller later.
"""

from __future__ import annotations

import math
import re
from typing import Any

MAX_TIME = 253402300799.0
"""9999-12-31T23:59:59Z: the last time stamp datetime (and a person) can read."""
MAX_COUNT = 2**53
"""Revisions, generations: exact in a JSON number read by any client."""
MAX_TEXT = 4096

_HEX = re.compile(r"(?:[0-9a-f]{2})+", re.ASCII)


def obj(data: Any, what: str, *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """`data` as a JSON object that has every key in `required`."""
    if not isinstance(data, dict):
        raise TypeError(f"{what} is {type(data).__name__}, not an object")
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"{what} lacks {', '.join(missing)}")
    return data


def integer(data: dict[str, Any], key: str, *, lo: int = 0, hi: int = MAX_COUNT) -> int:
    value = data[key]
    if type(value) is not int or not lo <= value <= hi:
        raise ValueError(f"{key} is {value!r}, not a whole number {lo}..{hi}")
    return value


def number(data: dict[str, Any], key: str, *, lo: float, hi: float) -> float:
    value = data[key]
    if type(value) not in (int, float) or not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"{key} is {value!r}, not a number {lo:g}..{hi:g}")
    return float(value)


def timestamp(data: dict[str, Any], key: str) -> float:
    """Seconds since the epoch, 0 up to the year 9999."""
    return number(data, key, lo=0.0, hi=MAX_TIME)


def text(data: dict[str, Any], key: str, *, limit: int = MAX_TEXT) -> str:
    value = data[key]
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{key} is not text of at most {limit} characters")
    return value


def hexbytes(data: dict[str, Any], key: str, *, size: int) -> bytes:
    """`size` bytes written as lower-case hex digits."""
    value = data[key]
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise ValueError(f"{key} is not {size} bytes in hex")
    return bytes.fromhex(value)


def strings(data: dict[str, Any], key: str, *, limit: int = 64) -> list[str]:
    value = data[key]
    if not isinstance(value, list) or len(value) > limit or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} is not a list of at most {limit} strings")
    return list(value)
