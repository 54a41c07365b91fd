"""The satellite identity: created on first start, kept under the state directory (0600)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable

from satbridge.errors import FailedPrecondition
from satbridge.services.ports import Clock, HostInfo, Store
from satbridge.tls.certs import KeyPair, create_identity

KEY_FILE = "identity.key"
CERT_FILE = "identity.crt"
MAX_PEM = 64 << 10
"""An identity file is a few hundred bytes; more is damage."""
FIX = "run `satbridge factory-reset --yes` to make a new identity (the paired server must then pair again)"


class IdentityService:
    def __init__(self, store: Store, clock: Clock, host: HostInfo) -> None:
        self.store = store
        self.clock = clock
        self.host = host
        self._cached: tuple[Hashable, KeyPair] | None = None

    def ensure(self) -> KeyPair:
        """Load the identity, creating it when there is none. Call with the store locked.
        A damaged one is FailedPrecondition: only a factory reset replaces it (discard, then
        ensure), since every paired server pinned it."""
        existing = self._load()
        if existing:
            return existing
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        pair = create_identity(now, self.host.hostname())
        # Key first: a crash between the writes leaves a key with no cert, which is redone,
        # never a cert whose key is lost.
        self.store.write(KEY_FILE, pair.key_pem, private=True)
        self.store.write(CERT_FILE, pair.cert_pem)
        self._cached = None
        return pair

    def current(self) -> KeyPair:
        """The identity on disk (cached while the file is unchanged)."""
        pair = self._load()
        if pair is None:
            raise FailedPrecondition("this satellite has no identity yet; start the bridge once")
        return pair

    def _load(self) -> KeyPair | None:
        version = self.store.version(CERT_FILE)
        if self._cached and self._cached[0] == version:
            return self._cached[1]
        # Through the checked open: a directory or a FIFO in a file's place is FailedPrecondition
        # naming the file and the fix, never a traceback or a hang.
        cert = self.store.read(CERT_FILE, limit=MAX_PEM, fix=FIX)
        key = self.store.read(KEY_FILE, limit=MAX_PEM, fix=FIX)
        if not cert or not key:
            return None
        pair = KeyPair(key, cert)
        self._cached = (version, pair)
        return pair

    def discard(self) -> None:
        """Forget the identity (factory reset); every certificate it issued dies with it."""
        self.store.remove(CERT_FILE)
        self.store.remove(KEY_FILE)
        self._cached = None
