"""Events (System.WatchEvents): what each one says, the ring that keeps the recent ones, and how
audit records and resource readings become events. Pure: no I/O, no clock, no asyncio.

One run of the bridge numbers its events 1, 2, 3, ... (`Event.seq`). The ring keeps the last
`size` of them; a reader holds a cursor (the next seq it wants) and reads from the ring, so a
subscriber costs a number, not a queue: a slow one cannot grow memory, it falls off the ring's
end and is told so (`Lost`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

DEFAULT_RING = 4096
"""Events held for `since` (about a day of a busy satellite; each is a few hundred bytes)."""


# -- what an event says (the oneof of satbridge.v1.Event; enum values by name) -----------------


@dataclass(frozen=True)
class XccChanged:
    KIND: ClassVar[str] = "xcc"
    active_state: str
    sub_state: str
    main_pid: int
    result: str


@dataclass(frozen=True)
class InstallProgress:
    KIND: ClassVar[str] = "install"
    phase: str
    message: str = ""
    percent: int = 0
    version: str = ""
    reason: str = ""


@dataclass(frozen=True)
class FirewallChanged:
    KIND: ClassVar[str] = "firewall"
    action: str  # SET, CONFIRMED, RESET, ROLLED_BACK, REAPPLIED
    revision: int = 0
    reason: str = ""
    by: str = ""


@dataclass(frozen=True)
class NetworkChanged:
    KIND: ClassVar[str] = "network"
    action: str  # CHANGED, CONFIRMED, REVERTED
    what: str = ""
    reason: str = ""


@dataclass(frozen=True)
class PairingChanged:
    KIND: ClassVar[str] = "pairing"
    action: str  # WINDOW_OPENED, WINDOW_CLOSED, ATTEMPT_FAILED, SOURCE_LOCKED, PAIRED, UNPAIRED
    reason: str = ""
    source: str = ""
    peer_name: str = ""
    attempts_left: int = 0


@dataclass(frozen=True)
class ResourceLow:
    KIND: ClassVar[str] = "resource"
    resource: str  # DISK, MEMORY
    low: bool
    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class BridgeLifecycle:
    KIND: ClassVar[str] = "bridge"
    action: str  # STARTED, STOPPING
    version: str = ""


@dataclass(frozen=True)
class FactoryReset:
    KIND: ClassVar[str] = "factory_reset"
    by: str = ""


Payload = (
    XccChanged
    | InstallProgress
    | FirewallChanged
    | NetworkChanged
    | PairingChanged
    | ResourceLow
    | BridgeLifecycle
    | FactoryReset
)


@dataclass(frozen=True)
class Event:
    seq: int  # 1, 2, ... within one run
    time: float  # seconds since the epoch
    generation: int  # the state generation when it was published
    payload: Payload

    @property
    def ends_stream(self) -> bool:
        """After this event a subscription ends (its server was unpaired, or the bridge stops)."""
        p = self.payload
        return (
            isinstance(p, FactoryReset)
            or (isinstance(p, PairingChanged) and p.action == "UNPAIRED")
            or (isinstance(p, BridgeLifecycle) and p.action == "STOPPING")
        )


@dataclass(frozen=True)
class Lost:
    """Events were missed; the next event read is `first_available_seq`."""

    reason: str  # OUT_OF_RING, OTHER_RUN, TOO_SLOW
    first_available_seq: int


# -- the ring ---------------------------------------------------------------------------------


class Ring:
    """The last `size` events, by seq (O(1) append and lookup)."""

    def __init__(self, size: int = DEFAULT_RING) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        self._slots: list[Event | None] = [None] * size
        self.last_seq = 0

    @property
    def first_seq(self) -> int:
        """The oldest seq held (last_seq + 1 when empty)."""
        return max(1, self.last_seq - self.size + 1)

    def append(self, time: float, generation: int, payload: Payload) -> Event:
        event = Event(self.last_seq + 1, time, generation, payload)
        self._slots[event.seq % self.size] = event
        self.last_seq = event.seq
        return event

    def start(self, since: int, *, same_run: bool = True, from_now: bool = False) -> tuple[int, Lost | None]:
        """Where a new reader starts: (next seq, Lost or None). `since` is the last seq the
        client saw in this run (0: none yet, so from the first); `from_now`: a client without
        a position (no run known) gets only new events. From another run, or past the newest,
        no seq it saw counts: it gets all that is held, after a Lost."""
        if from_now:
            return self.last_seq + 1, None
        if not same_run or since > self.last_seq:
            return self.first_seq, Lost("OTHER_RUN", self.first_seq)
        if since + 1 < self.first_seq:
            return self.first_seq, Lost("OUT_OF_RING", self.first_seq)
        return since + 1, None

    def read(self, next_seq: int, limit: int = 256) -> tuple[list[Event], Lost | None, int]:
        """Up to `limit` events from `next_seq` on: (events, Lost when the reader fell off the
        ring's end meanwhile, the next seq to read after these)."""
        lost = None
        if next_seq < self.first_seq:
            lost = Lost("TOO_SLOW", self.first_seq)
            next_seq = self.first_seq
        end = min(self.last_seq, next_seq + limit - 1)
        events = []
        for seq in range(next_seq, end + 1):
            event = self._slots[seq % self.size]
            if event is None or event.seq != seq:  # pragma: no cover - the invariant of append()
                raise AssertionError(f"ring slot for {seq} holds {event}")
            events.append(event)
        return events, lost, end + 1 if end >= next_seq else next_seq


# -- audit records -> events --------------------------------------------------------------------

_FIREWALL = {
    "firewall-set": "SET",
    "firewall-confirmed": "CONFIRMED",
    "firewall-reset": "RESET",
    "firewall-rolled-back": "ROLLED_BACK",
    "firewall-reapplied": "REAPPLIED",
}
_NETWORK = {"network-changed": "CHANGED", "network-confirmed": "CONFIRMED", "network-reverted": "REVERTED"}
_PAIRING = {
    "pairing-window-opened": "WINDOW_OPENED",
    "pairing-window-closed": "WINDOW_CLOSED",
    "pairing-failed": "ATTEMPT_FAILED",
    "pairing-source-locked": "SOURCE_LOCKED",
    "paired": "PAIRED",
    "disconnected": "UNPAIRED",
}


def _s(record: Mapping[str, object], key: str) -> str:
    value = record.get(key, "")
    return value if isinstance(value, str) else str(value)


def _i(record: Mapping[str, object], key: str) -> int:
    value = record.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def from_audit(record: Mapping[str, object]) -> Payload | None:
    """The event an audit-log entry (one JSON object of the audit log) stands for; None for
    entries that are no event (or not one a client watches). Never raises on odd fields."""
    name = record.get("event")
    if not isinstance(name, str):
        return None
    if name in _FIREWALL:
        return FirewallChanged(_FIREWALL[name], _i(record, "revision"), _s(record, "reason"), _s(record, "by"))
    if name in _NETWORK:
        return NetworkChanged(_NETWORK[name], _s(record, "what"), _s(record, "reason"))
    if name in _PAIRING:
        return PairingChanged(
            _PAIRING[name],
            reason=_s(record, "reason") or _s(record, "by"),
            source=_s(record, "source"),
            peer_name=_s(record, "peer_name"),
            attempts_left=_i(record, "window_attempts_left"),
        )
    if name == "factory-reset-started":
        return FactoryReset(_s(record, "by"))
    return None


# -- resources ----------------------------------------------------------------------------------

LOW_BELOW = 0.05
"""A resource is low when less than this share of it is free (available, for memory)."""
OK_ABOVE = 0.08
"""... and no longer low once more than this is free again (no event storm around the line)."""


def is_low(free: int, total: int, was_low: bool) -> bool:
    """Whether free/total counts as low now, with hysteresis (LOW_BELOW .. OK_ABOVE)."""
    if total <= 0:
        return False
    share = free / total
    return share < OK_ABOVE if was_low else share < LOW_BELOW
