"""Pairing logic: one-time codes, the proofs both sides exchange, the pairing window.

Pure: randomness and time come in as arguments.

The proofs use K = SHA-256(label || code). The code itself is kept only while its window is
open, in the 0600 window file beside the identity key (which is worth more), so that every
console and the CLI show the one code that works; it goes when the window closes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from satbridge.core import schema
from satbridge.errors import InvalidArgument

# Crockford's base32: no I, L, O, U, so a code read aloud or off a console is unambiguous.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_CHARS = 16  # 16 x 5 bits = 80 bits
CODE_BYTES = 10
KEY_LABEL = b"satbridge-pair-code-v1"
CLIENT_LABEL = b"satbridge-pair-v1"
SATELLITE_LABEL = b"satbridge-pair-v1-satellite"
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})


def format_code(entropy: bytes) -> str:
    """Turn 10 random bytes into `XXXX-XXXX-XXXX-XXXX`."""
    if len(entropy) != CODE_BYTES:
        raise ValueError("a pairing code needs exactly 10 bytes of entropy")
    number = int.from_bytes(entropy, "big")
    chars = [ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(CODE_CHARS))]
    return "-".join("".join(chars[i : i + 4]) for i in range(0, CODE_CHARS, 4))


def normalize_code(text: str) -> str:
    """Accept lower case, spaces, dashes and the usual look-alikes; return 16 symbols."""
    cleaned = "".join(ch for ch in text.upper() if ch not in " -\t").translate(_ALIASES)
    if len(cleaned) != CODE_CHARS or any(ch not in ALPHABET for ch in cleaned):
        raise InvalidArgument("a pairing code is 16 characters like K7QM-9T2X-HF4D-PW8R", field="code")
    return cleaned


def code_key(code: str) -> bytes:
    """K, the HMAC key derived from a code (what the proofs use)."""
    return hashlib.sha256(KEY_LABEL + normalize_code(code).encode()).digest()


def client_proof(key: bytes, identity_fp: bytes, csr_der: bytes, challenge: bytes) -> bytes:
    """What the client sends: proves it knows the code and saw this identity."""
    msg = CLIENT_LABEL + identity_fp + hashlib.sha256(csr_der).digest() + challenge
    return hmac.new(key, msg, hashlib.sha256).digest()


def satellite_proof(key: bytes, identity_fp: bytes, csr_der: bytes, challenge: bytes, cert_der: bytes) -> bytes:
    """What the satellite answers: proves it knows the code, bound to the certificate it issued."""
    msg = (
        SATELLITE_LABEL + identity_fp + hashlib.sha256(csr_der).digest() + challenge + hashlib.sha256(cert_der).digest()
    )
    return hmac.new(key, msg, hashlib.sha256).digest()


def proofs_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


@dataclass(frozen=True)
class Failures:
    """Wrong proofs from one source (an IPv4 address, an IPv6 /64) in one window."""

    source: str
    count: int
    last_at: float

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "count": self.count, "last_at": self.last_at}

    @classmethod
    def from_json(cls, data: Any) -> Failures:
        data = schema.obj(data, "pairing failures", required=("source", "count", "last_at"))
        return cls(
            schema.text(data, "source", limit=100),
            schema.integer(data, "count", hi=1000),
            schema.timestamp(data, "last_at"),
        )


def _failures(data: dict[str, Any], key: str) -> tuple[Failures, ...]:
    items = data.get(key, [])
    if not isinstance(items, list) or len(items) > 1000:
        raise ValueError(f"{key}: expected a list of at most 1000 entries")
    return tuple(Failures.from_json(item) for item in items)


@dataclass(frozen=True)
class PairingWindow:
    """An open pairing window, as persisted (the key; the service keeps the code beside it).

    Wrong proofs count per source (issue 16: five from anyone on the LAN closed the admin's
    window within 100 ms of its opening): a source that made `per_source` of them is locked out
    for the window's life, and `attempts_left` is the ceiling for all sources together, which
    closes the window only when many sources fail (a distributed guess)."""

    key: bytes
    opened_at: float
    expires_at: float
    attempts_left: int
    failures: tuple[Failures, ...] = ()

    def is_open(self, now: float) -> bool:
        return self.attempts_left > 0 and now < self.expires_at

    def failed(self, source: str) -> int:
        return next((f.count for f in self.failures if f.source == source), 0)

    def after_failure(self, source: str = "", now: float = 0.0) -> PairingWindow:
        mine = Failures(source, self.failed(source) + 1, now)
        others = tuple(f for f in self.failures if f.source != source)
        return replace(self, attempts_left=max(0, self.attempts_left - 1), failures=(*others, mine))

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key.hex(),
            "opened_at": self.opened_at,
            "expires_at": self.expires_at,
            "attempts_left": self.attempts_left,
            "failures": [f.to_json() for f in self.failures],
        }

    @classmethod
    def from_json(cls, data: Any) -> PairingWindow:
        """pairing-window.json's schema: the 32-byte key, time stamps, 0..1000 attempts, and
        the failures per source (absent in a window written before they were counted)."""
        data = schema.obj(data, "pairing window", required=("key", "opened_at", "expires_at", "attempts_left"))
        return cls(
            key=schema.hexbytes(data, "key", size=32),
            opened_at=schema.timestamp(data, "opened_at"),
            expires_at=schema.timestamp(data, "expires_at"),
            attempts_left=schema.integer(data, "attempts_left", hi=1000),
            failures=_failures(data, "failures"),
        )


@dataclass(frozen=True)
class ClosedForFailures:
    """A window the failures closed: when, and who failed (shown until a window opens again)."""

    closed_at: float
    failures: tuple[Failures, ...]

    def to_json(self) -> dict[str, Any]:
        return {"closed_at": self.closed_at, "failures": [f.to_json() for f in self.failures]}

    @classmethod
    def from_json(cls, data: Any) -> ClosedForFailures:
        data = schema.obj(data, "closed pairing window", required=("closed_at", "failures"))
        return cls(schema.timestamp(data, "closed_at"), _failures(data, "failures"))

    def summary(self, when: Callable[[float], str], limit: int = 5) -> str:
        """ "3 sources: ipv4:192.0.2.7 (5, last 12:00:01), ... and 1 more"."""
        ranked = sorted(self.failures, key=lambda f: (-f.count, f.last_at))
        shown = [f"{f.source} ({f.count}, last {when(f.last_at)})" for f in ranked[:limit]]
        more = len(ranked) - len(shown)
        return f"{len(ranked)} sources: " + ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def open_window(code: str, *, now: float, minutes: int, attempts: int) -> PairingWindow:
    return PairingWindow(code_key(code), now, now + 60 * minutes, attempts)


def peer_address(peer: str) -> str:
    """The address part of a grpc peer string, for per-address bounds: "ipv4:192.0.2.7:4711"
    -> "ipv4:192.0.2.7"; IPv6 goes by its /64, the block one host can fill on its own."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return f"ipv4:{rest.rpartition(':')[0]}"
    if kind == "ipv6":
        host = rest.rpartition(":")[0].strip("[]").split("%")[0]
        try:
            net = ipaddress.IPv6Network(f"{host}/64", strict=False)
        except ValueError:
            return peer
        return f"ipv6:{net}"
    return peer


Connection = tuple[str, int | None]
"""A connection's identity: grpc's peer string and the kernel's socket inode (None if unknown)."""


@dataclass
class ChallengeBook:
    """Single-use pairing challenges, each bound to the connection it was issued on.

    The rule (issue 16, red team findings 5 and 6): a challenge belongs to its connection and
    dies with it; no other address's traffic can take it away.

    * a connection is (peer string, socket inode): a new connection from the same source port
      is another connection, and `prune` drops the challenges of connections that closed;
    * one live challenge per connection: a new GetIdentity on it replaces the connection's own;
    * unused, a challenge lives `ttl` seconds (a Pair follows its GetIdentity within one);
    * at most `per_address` challenges per address (IPv6: one /64): the address's newest
      evicts that address's oldest once the oldest is `hold` seconds old, never another
      address's; within `hold` it is refused (the caller answers RESOURCE_EXHAUSTED);
    * at most `capacity` in all; beyond, refused.

    A proof includes the challenge, so a captured Pair request replayed on any other
    connection, or twice, fails.
    """

    ttl: float = 30.0
    per_address: int = 8
    capacity: int = 4096
    hold: float | None = None  # None: = ttl, so a live, unused challenge is never evicted by its own address either

    def __post_init__(self) -> None:
        if self.hold is None:
            self.hold = self.ttl
        self._missing: set[Connection] = set()  # missed by the last look
        self._issued: dict[Connection, tuple[bytes, float, float]] = {}  # conn -> (challenge, issued, expires)
        self.abandoned = 0  # challenges that expired, were replaced or evicted unused, or lost their connection

    def issue(self, challenge: bytes, conn: Connection, now: float) -> bytes | None:
        """Bind `challenge` to `conn`; None when the book, or the connection's address, has no room."""
        self._expire(now)
        if self._issued.pop(conn, None) is not None:
            self.abandoned += 1
        address = peer_address(conn[0])
        mine = sorted((v[1], k) for k, v in self._issued.items() if peer_address(k[0]) == address)
        if len(mine) >= self.per_address:
            issued, oldest = mine[0]
            if now - issued < (self.ttl if self.hold is None else self.hold):
                return None
            del self._issued[oldest]
            self.abandoned += 1
        elif len(self._issued) >= self.capacity:
            return None
        self._issued[conn] = (challenge, now, now + self.ttl)
        return challenge

    def redeem(self, challenge: bytes, conn: Connection, now: float) -> bool:
        """True when `challenge` is the one issued on `conn` and has not expired. The
        connection's challenge is used up either way, so a wrong guess costs the guesser its own."""
        self._expire(now)
        entry = self._issued.pop(conn, None)
        return entry is not None and hmac.compare_digest(entry[0], challenge)

    def prune(self, alive: set[Connection]) -> None:
        """Drop the challenges of connections that are no longer open (known inodes only).

        A connection counts as closed only when two looks in a row miss it: /proc/net/tcp is
        read in pieces while connections come and go, so one read can miss a connection that is
        open (proc(5): seq_file reads are not a snapshot), and an honest challenge must never go
        for that."""
        for conn in list(self._issued):
            if conn[1] is None or conn in alive:
                self._missing.discard(conn)
            elif conn in self._missing:
                del self._issued[conn]
                self._missing.discard(conn)
                self.abandoned += 1
            else:
                self._missing.add(conn)

    def connections(self) -> list[Connection]:
        return list(self._issued)

    def __len__(self) -> int:
        return len(self._issued)

    def _expire(self, now: float) -> None:
        for key in [k for k, (_, _, until) in self._issued.items() if until <= now]:
            del self._issued[key]
            self.abandoned += 1
