"""Pairing, trust and disconnect: who may manage this satellite.

The trust store holds exactly one fingerprint: the paired server's client certificate. The
auth interceptor asks `is_trusted` on every call; it re-reads the file whenever it changes,
so a pairing or disconnect made by another process takes effect at the very next call.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, NoReturn

from satbridge.config import PairingConfig
from satbridge.core import pairing as core
from satbridge.core import schema
from satbridge.core.status import PairingStatus
from satbridge.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from satbridge.services.identity import IdentityService
from satbridge.services.ports import AuditLog, Clock, Entropy, Store
from satbridge.services.state import StateService
from satbridge.tls import certs

log = logging.getLogger(__name__)


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


WINDOW_FILE = "pairing-window.json"
CLOSED_FILE = "pairing-closed.json"
"""Why the last window closed, when wrong codes closed it: who failed, how often and when (the
same facts as the audit log's pairing-failed entries), shown until a window opens again."""
TRUST_FILE = "trust.json"


@dataclass(frozen=True)
class OpenWindow:
    """A window as the admin sees it. Its code is kept, while the window is open, in the
    0600 window file beside the identity key, so every console and the CLI show the same code."""

    code: str
    expires_at: float
    attempts_left: int
    fingerprint: str


@dataclass(frozen=True)
class Trust:
    peer_fingerprint: str
    peer_name: str
    paired_at: float

    def to_json(self) -> dict[str, Any]:
        return {"peer_fingerprint": self.peer_fingerprint, "peer_name": self.peer_name, "paired_at": self.paired_at}


def _trust(data: Any) -> Trust:
    """trust.json's schema, as written by to_json (the loader treats what this refuses as damage):
    a SHA-256 fingerprint in hex, a name, the time of pairing."""
    data = schema.obj(data, "trust", required=("peer_fingerprint", "peer_name", "paired_at"))
    return Trust(
        schema.hexbytes(data, "peer_fingerprint", size=32).hex(),
        schema.text(data, "peer_name", limit=255),
        schema.timestamp(data, "paired_at"),
    )


@dataclass(frozen=True)
class PairResult:
    client_cert_pem: bytes
    identity_cert_pem: bytes
    satellite_proof: bytes
    instance_id: str


class PairingService:
    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        clock: Clock,
        entropy: Entropy,
        identity: IdentityService,
        state: StateService,
        config: PairingConfig,
    ) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock
        self.entropy = entropy
        self.identity = identity
        self.state = state
        self.config = config
        self._trust_cache: tuple[Hashable, Trust | None] | None = None

    # -- the window -------------------------------------------------------------------

    def _window(self) -> core.PairingWindow | None:
        return self.store.read_json(WINDOW_FILE, core.PairingWindow.from_json)

    def _write_window(self, window: core.PairingWindow, code: str) -> None:
        self.store.write(WINDOW_FILE, json.dumps({**window.to_json(), "code": code}).encode(), private=True)

    def _code(self) -> str:
        """The open window's code ("" for a window written before codes were kept)."""

        def parse(data: Any) -> str:
            code = data.get("code", "") if isinstance(data, dict) else ""
            return code if isinstance(code, str) else ""

        return self.store.read_json(WINDOW_FILE, parse) or ""

    def closed_for_failures(self) -> core.ClosedForFailures | None:
        """The last window, when wrong codes from many sources closed it; else None."""
        return self.store.read_json(CLOSED_FILE, core.ClosedForFailures.from_json)

    def _open(self, reason: str) -> OpenWindow:
        code = core.format_code(self.entropy(core.CODE_BYTES))
        window = core.open_window(
            code, now=self.clock(), minutes=self.config.window_minutes, attempts=self.config.max_failures
        )
        self.store.remove(CLOSED_FILE)
        self._write_window(window, code)
        self.state.bump()
        self.audit.record("pairing-window-opened", reason=reason, expires_at=int(window.expires_at))
        return OpenWindow(code, window.expires_at, window.attempts_left, self.identity.current().fingerprint.hex())

    def open_window(self) -> OpenWindow:
        """Open a window with a new code (any earlier code stops working)."""
        with self.store.lock():
            return self._open("admin")

    def current_window(self) -> OpenWindow | None:
        """The open window and its code, as every console and the CLI show it; None when closed.
        Reading never changes the code: two consoles show the same one."""
        window = self._window()
        if window is None or not window.is_open(self.clock()):
            return None
        code = self._code()
        try:
            if not code or core.code_key(code) != window.key:
                return None
        except InvalidArgument:  # a damaged code is no code: show_window issues a new one
            return None
        return OpenWindow(code, window.expires_at, window.attempts_left, self.identity.current().fingerprint.hex())

    def show_window(self) -> OpenWindow:
        """Show the open window with the code it has (a window from an older bridge, whose code
        was not kept, gets a new one)."""
        with self.store.lock():
            window = self._window()
            if window is None or not window.is_open(self.clock()):
                closed = self.closed_for_failures()
                why = ""
                if closed is not None:
                    why = f" (closed at {_when(closed.closed_at)} by wrong codes from {closed.summary(_when)})"
                raise FailedPrecondition(f"no pairing window is open{why}; open one with `pair-window open`")
            return self.current_window() or self._open("code shown again")

    def close_window(self) -> bool:
        with self.store.lock():
            if self._window() is None:
                return False
            self.store.remove(WINDOW_FILE)
            self.state.bump()
            self.audit.record("pairing-window-closed", reason="admin")
            return True

    def auto_open(self) -> OpenWindow | None:
        """At start, while unpaired: a fresh satellite is ready to commission."""
        if not self.config.auto_open:
            return None
        with self.store.lock():
            if self.trust() is not None:
                return None
            window = self._window()
            if window is not None and window.is_open(self.clock()):
                return None
            return self._open("unpaired at start")

    # -- trust ------------------------------------------------------------------------

    def trust(self) -> Trust | None:
        version = self.store.version(TRUST_FILE)
        if self._trust_cache and self._trust_cache[0] == version:
            return self._trust_cache[1]
        # Damaged trust is set aside: the satellite is then unpaired, which fails closed (the
        # server is refused and must pair again), and the audit log says why.
        trust = self.store.read_json(TRUST_FILE, _trust)
        self._trust_cache = (version, trust)
        return trust

    def is_trusted(self, fingerprint_hex: str) -> bool:
        trust = self.trust()
        return trust is not None and trust.peer_fingerprint == fingerprint_hex

    def status(self) -> PairingStatus:
        trust = self.trust()
        window = self._window()
        now = self.clock()
        is_open = window is not None and window.is_open(now)
        return PairingStatus(
            paired=trust is not None,
            peer_name=trust.peer_name if trust else "",
            peer_fingerprint=trust.peer_fingerprint if trust else "",
            paired_at=trust.paired_at if trust else None,
            window_open=is_open,
            window_expires_at=window.expires_at if window and is_open else None,
            attempts_left=window.attempts_left if window and is_open else 0,
            closed_for_failures=None if is_open or trust is not None else self.closed_for_failures(),
        )

    # -- pair / unpair ----------------------------------------------------------------

    def pair(self, csr_pem: bytes, challenge: bytes, proof: bytes, *, peer: str = "") -> PairResult:
        """Verify the client's proof, sign its CSR, make it the one trusted server. `peer` (the
        connection's address, when it came over the network) goes into the audit log."""
        if len(proof) != 32:
            raise InvalidArgument("must be 32 bytes (HMAC-SHA256)", field="proof")
        csr = certs.check_csr(csr_pem)
        with self.store.lock():
            window = self._window()
            now = self.clock()
            if window is None or not window.is_open(now):
                if window is not None:
                    self.store.remove(WINDOW_FILE)
                raise FailedPrecondition("no pairing window is open on this satellite")
            source = core.peer_address(peer) or "local"
            if window.failed(source) >= self.config.max_attempts:
                # Locked out for the window's life; audited once, when it happened.
                raise PermissionDenied(
                    f"{self.config.max_attempts} wrong codes came from this address; it may not try again "
                    "until a new pairing window is opened"
                )
            identity = self.identity.current()
            expected = core.client_proof(window.key, identity.fingerprint, csr.der, challenge)
            if not core.proofs_equal(expected, proof):
                self._failed(window.after_failure(source, now), source, csr.name, peer, now)
            cert_pem = certs.sign_client(identity, csr, dt.datetime.fromtimestamp(now, dt.UTC))
            previous = self.trust()
            trust = Trust(certs.fingerprint(cert_pem).hex(), csr.name, now)
            self.store.write(TRUST_FILE, json.dumps(trust.to_json()).encode())
            self.store.remove(WINDOW_FILE)
            self.store.remove(CLOSED_FILE)
            self.state.bump()
            instance_id, _ = self.state.current()
            self.audit.record(
                "paired",
                peer_name=csr.name,
                peer=peer,
                peer_fingerprint=trust.peer_fingerprint,
                replaced=previous.peer_fingerprint if previous else "",
            )
        answer = core.satellite_proof(window.key, identity.fingerprint, csr.der, challenge, certs.cert_der(cert_pem))
        return PairResult(cert_pem, identity.cert_pem, answer, instance_id)

    def _failed(self, window: core.PairingWindow, source: str, name: str, peer: str, now: float) -> NoReturn:
        """Count a wrong proof from `source` (store lock held), audit it, and refuse the call."""
        mine = window.failed(source)
        left_here = max(0, self.config.max_attempts - mine)
        if window.attempts_left:
            self._write_window(window, self._code())
        else:
            self.store.remove(WINDOW_FILE)
            closed = core.ClosedForFailures(now, window.failures)
            self.store.write(CLOSED_FILE, json.dumps(closed.to_json()).encode())
        self.audit.record(
            "pairing-failed",
            peer_name=name,
            peer=peer,
            source=source,
            attempts_left=left_here,
            window_attempts_left=window.attempts_left,
            reason="bad proof",
        )
        if not left_here:
            self.audit.record("pairing-source-locked", source=source, peer=peer, failures=mine)
        if not window.attempts_left:
            self.audit.record(
                "pairing-window-closed",
                reason="too many failed attempts",
                sources=len(window.failures),
                failures=core.ClosedForFailures(now, window.failures).summary(_when, limit=20),
            )
        raise PermissionDenied(
            "pairing proof does not verify: a wrong code, or the connection is intercepted"
            + ("" if left_here else "; this address may not try again in this window")
            + ("" if window.attempts_left else "; the window is now closed")
        )

    def unpair(self, *, by: str) -> bool:
        """Remove the trust: the paired server's certificate is refused from the next call on.
        False when there was nothing to remove."""
        with self.store.lock():
            trust = self.trust()
            if trust is None:
                return False
            self.store.remove(TRUST_FILE)
            self.state.bump()
            self.audit.record("disconnected", by=by, peer_name=trust.peer_name, peer_fingerprint=trust.peer_fingerprint)
        return True
