"""Redaction of secrets by value, for what the support bundle carries (pure).

What counts as a secret follows the detectors of Yelp's detect-secrets (PrivateKeyDetector,
BasicAuthDetector, KeywordDetector): private key blocks (PEM, OpenSSH, PGP), the password in a URL's
userinfo (RFC 3986 section 3.2.1), `Authorization: Basic|Bearer` values, and the value of any
key=value or "key": "value" pair whose key names a password, secret, token, API key, private key
or credential. That library scans source files for review; the bundle needs a streaming rewrite
of logs that may be gigabytes, so the same patterns are applied here, line by line.

Every secret is masked with as many `*` as it had bytes: the bundle's tar headers state each
file's size before its content, so redaction never changes a length.
"""

from __future__ import annotations

import re
from collections.abc import Callable

MAX_LINE = 1 << 20  # a longer line is redacted in pieces of this size
MAX_KEY_LINES = 400  # a key block without its END line is masked for at most this many lines

_KEYWORD = (
    rb"[A-Za-z0-9_.\-]*"
    rb"(?:pass(?:word|wd|phrase)?|secret|token|api[_\-]?key|private[_\-]?key|credentials?|auth)"
    rb"[A-Za-z0-9_.\-]*"
)
_PAIR = re.compile(rb"(?i)(" + _KEYWORD + rb")(\"?\s*[=:]\s*\"?)([^\s\"',;&}\]]+)")
_URL_PASSWORD = re.compile(rb"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@]+:)([^/\s@]+)(@)")
_AUTHORIZATION = re.compile(rb"(?i)(authorization\s*[:=]\s*\"?(?:basic|bearer|token)\s+)([^\s\"']+)")
_KEY_IN_LINE = re.compile(
    rb"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)(.*?)(-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)"
)
_KEY_BEGIN = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-")
_KEY_END = re.compile(rb"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|Private-MAC:")


def _mask_group(group: int) -> Callable[[re.Match[bytes]], bytes]:
    def mask(m: re.Match[bytes]) -> bytes:
        start, end = m.span(group)
        whole = m.group(0)
        offset = m.start(0)
        return whole[: start - offset] + b"*" * (end - start) + whole[end - offset :]

    return mask


def redact_line(line: bytes) -> bytes:
    """One line (no key block state) with every secret masked; same length."""
    line = _KEY_IN_LINE.sub(_mask_group(2), line)
    line = _URL_PASSWORD.sub(_mask_group(2), line)
    line = _AUTHORIZATION.sub(_mask_group(2), line)
    return _PAIR.sub(_mask_group(3), line)


class Redactor:
    """A stream of log bytes with secrets masked, fed in chunks of any size. Output has exactly
    the length of the input (after `flush`); lines are kept whole across chunk boundaries."""

    def __init__(self) -> None:
        self._pending = b""
        self._in_key = 0  # lines left to mask inside a private key block; 0 when outside

    def feed(self, data: bytes) -> bytes:
        data = self._pending + data
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) < MAX_LINE:
            self._pending = data
            return b""
        if cut == 0:
            cut = len(data)
        self._pending = data[cut:]
        return b"".join(self._line(line) for line in data[:cut].splitlines(keepends=True))

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return self._line(rest) if rest else b""

    def _line(self, line: bytes) -> bytes:
        if self._in_key:
            if _KEY_END.search(line):
                self._in_key = 0
                return line
            self._in_key -= 1
            body = line.rstrip(b"\r\n")
            return b"*" * len(body) + line[len(body) :]
        if _KEY_BEGIN.search(line) and not _KEY_IN_LINE.search(line):
            self._in_key = MAX_KEY_LINES
            return line
        return redact_line(line)


def redact_text(text: str) -> str:
    """A string (a config value, a log's text) with secrets masked."""
    redactor = Redactor()
    data = redactor.feed(text.encode(errors="surrogateescape"))
    return (data + redactor.flush()).decode(errors="surrogateescape")
