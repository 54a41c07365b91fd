"""core.events: the ring's cursor semantics (every event once, in order, or a Lost naming the
first one still held), audit entries -> events, the low-resource hysteresis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satbridge.core import events as ev


def _payload(i: int) -> ev.Payload:
    return ev.FirewallChanged("SET", revision=i)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.integers(1, 40)),
        st.tuples(st.just("read"), st.integers(1, 30)),
        st.tuples(st.just("reconnect"), st.integers(0, 3)),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(size=st.integers(1, 32), script=ops, start=st.integers(0, 5))
def test_every_event_once_in_order_or_a_gap(size: int, script: list[tuple[str, int]], start: int) -> None:
    """One client through any mix of publishes, reads and reconnects (with since = the last seq it
    saw, or a stale/too-new since): it sees seqs strictly one after another, except right after a
    Lost, which names exactly where it goes on; and nothing it was never told about is missing."""
    ring = ev.Ring(size)
    for i in range(start):
        ring.append(float(i), 0, _payload(i))
    cursor, lost = ring.start(0, from_now=True)
    assert lost is None
    seen: list[int] = []
    expected = cursor  # the seq the client must see next
    skipped: set[int] = set()

    def take(items: list[ev.Event | ev.Lost]) -> None:
        nonlocal expected
        for item in items:
            if isinstance(item, ev.Lost):
                assert item.first_available_seq > expected, "a Lost only when something was lost"
                skipped.update(range(expected, item.first_available_seq))
                expected = item.first_available_seq
            else:
                assert item.seq == expected
                seen.append(item.seq)
                expected += 1

    for op, n in script:
        if op == "publish":
            for _ in range(n):
                ring.append(0.0, 0, _payload(ring.last_seq + 1))
        elif op == "read":
            events, lost, cursor = ring.read(cursor, n)
            take([*([lost] if lost else []), *events])
        else:  # reconnect with since = the last seq seen (n == 0), or a stale one (n > 0)
            since = max(0, expected - 1 - n)
            cursor, lost = ring.start(since)
            if since + 1 < expected and (lost is None or lost.first_available_seq <= expected):
                # resumed earlier than it had to: what it already saw is skipped, as a client would
                assert cursor <= expected
                cursor = expected
                continue
            take([lost] if lost else [])
            assert cursor == expected
    while True:  # drain
        events, lost, cursor = ring.read(cursor, 7)
        take([*([lost] if lost else []), *events])
        if not events and not lost:
            break
    assert len(seen) == len(set(seen))
    assert set(seen) | skipped == set(range(start + 1, ring.last_seq + 1))
    assert max(seen, default=start) == ring.last_seq or ring.last_seq == start


def test_since_out_of_the_ring_or_from_another_run() -> None:
    ring = ev.Ring(4)
    for i in range(10):
        ring.append(float(i), i, _payload(i))
    assert ring.first_seq == 7
    assert ring.start(0, from_now=True) == (11, None)
    assert ring.start(0) == (7, ev.Lost("OUT_OF_RING", 7))
    assert ring.start(8) == (9, None)
    assert ring.start(6) == (7, None)  # 7 is still held: nothing lost
    assert ring.start(2) == (7, ev.Lost("OUT_OF_RING", 7))
    assert ring.start(99) == (7, ev.Lost("OTHER_RUN", 7))
    assert ring.start(8, same_run=False) == (7, ev.Lost("OTHER_RUN", 7))
    events, lost, nxt = ring.read(1)
    assert lost == ev.Lost("TOO_SLOW", 7)
    assert [e.seq for e in events] == [7, 8, 9, 10]
    assert nxt == 11
    assert ring.read(11) == ([], None, 11)


def test_ring_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="size"):
        ev.Ring(0)


@pytest.mark.parametrize(
    ("record", "payload"),
    [
        (
            {"event": "firewall-rolled-back", "revision": 7, "reason": "not confirmed in time"},
            ev.FirewallChanged("ROLLED_BACK", 7, "not confirmed in time"),
        ),
        (
            {"event": "firewall-set", "revision": 3, "by": "central (Set RPC)"},
            ev.FirewallChanged("SET", 3, by="central (Set RPC)"),
        ),
        (
            {"event": "network-reverted", "what": "dhcp", "reason": "not confirmed in time"},
            ev.NetworkChanged("REVERTED", "dhcp", "not confirmed in time"),
        ),
        (
            {"event": "network-confirmed", "what": "static 192.0.2.5/24"},
            ev.NetworkChanged("CONFIRMED", "static 192.0.2.5/24"),
        ),
        (
            {"event": "pairing-failed", "source": "192.0.2.9", "window_attempts_left": 49},
            ev.PairingChanged("ATTEMPT_FAILED", source="192.0.2.9", attempts_left=49),
        ),
        ({"event": "disconnected", "by": "console"}, ev.PairingChanged("UNPAIRED", reason="console")),
        ({"event": "factory-reset-started", "by": "console"}, ev.FactoryReset("console")),
        ({"event": "state-file-damaged"}, None),
        ({"event": 5}, None),
        ({}, None),
        ({"event": "firewall-set", "revision": "x", "by": 3}, ev.FirewallChanged("SET", 0, by="3")),
        ({"event": "firewall-set", "revision": True}, ev.FirewallChanged("SET", 0)),
    ],
)
def test_from_audit(record: dict[str, object], payload: ev.Payload | None) -> None:
    assert ev.from_audit(record) == payload


@given(st.dictionaries(st.text(max_size=30), st.one_of(st.text(), st.integers(), st.booleans(), st.none()), max_size=6))
def test_from_audit_never_raises(record: dict[str, object]) -> None:
    ev.from_audit(record)
    ev.from_audit({**record, "event": "pairing-failed"})


def test_ends_stream() -> None:
    def event(p: ev.Payload) -> ev.Event:
        return ev.Event(1, 0.0, 0, p)

    assert event(ev.PairingChanged("UNPAIRED")).ends_stream
    assert event(ev.FactoryReset("console")).ends_stream
    assert event(ev.BridgeLifecycle("STOPPING")).ends_stream
    assert not event(ev.PairingChanged("PAIRED")).ends_stream
    assert not event(ev.BridgeLifecycle("STARTED")).ends_stream


def test_low_with_hysteresis() -> None:
    assert not ev.is_low(10, 100, False)
    assert ev.is_low(4, 100, False)
    assert ev.is_low(6, 100, True)  # still low until above OK_ABOVE
    assert not ev.is_low(9, 100, True)
    assert not ev.is_low(0, 0, False)
