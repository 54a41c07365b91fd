"""`satctl watch` as a process, against an in-process bridge behind a TCP relay that the test
cuts: after 10 s without a connection it resumes with `since` and prints every event once, in
order (no gap: the ring still holds them)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys

import pytest

from satbridge.core import events as ev
from tests.conftest import pair_with

PY = sys.executable


class Relay:
    """127.0.0.1:<port> -> the bridge's management port, bytes copied; cut() drops every
    connection and refuses new ones until mend()."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.open = True
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.connections = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        for task in (
            asyncio.ensure_future(pipe(reader, up_writer)),
            asyncio.ensure_future(pipe(up_reader, writer)),
        ):
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def cut(self) -> None:
        self.open = False
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    def mend(self) -> None:
        self.open = True

    async def stop(self) -> None:
        self.cut()
        if self.server:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _lines(stream: asyncio.StreamReader, n: int, timeout: float) -> list[dict[str, object]]:
    out = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            line = await stream.readline()
            assert line, "satctl watch ended"
            out.append(json.loads(line))
    return out


async def test_watch_resumes_after_a_10_s_cut_with_every_event_once(running, inventory):
    sat = await pair_with(running, inventory)
    relay = Relay(running.bound.management)
    inventory.satellites[sat.name] = dataclasses.replace(sat, port=await relay.start())
    inventory.save()
    bus = running.bridge.events
    await asyncio.sleep(0.6)  # the pairing's own events (audit feed) are out before watch starts
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "satbridge.client",
        "--config-dir",
        str(inventory.directory),
        "watch",
        "--json",
        "--count",
        "30",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        for _ in range(100):  # subscribed: the bus has it
            if bus.subscribers:
                break
            await asyncio.sleep(0.1)
        published = 0

        def publish(n: int) -> None:
            nonlocal published
            for _ in range(n):
                published += 1
                bus.publish(ev.NetworkChanged("CHANGED", f"test {published}"))

        publish(5)
        seen = await _lines(proc.stdout, 5, 20)
        relay.cut()
        for _ in range(10):  # 10 s without a connection, events going on meanwhile
            publish(2)
            await asyncio.sleep(1.0)
        relay.mend()
        await asyncio.sleep(0.5)
        publish(5)
        seen += await _lines(proc.stdout, 25, 60)
        assert await asyncio.wait_for(proc.wait(), 10) == 0  # --count 30: done
        whats = [line["network"]["what"] for line in seen]  # type: ignore[index]
        assert whats == [f"test {i}" for i in range(1, 31)]
        seqs = [line["seq"] for line in seen]
        assert seqs == list(range(seqs[0], seqs[0] + 30))
        assert all(line["kind"] == "network" for line in seen)
        err = (await proc.stderr.read()).decode()
        assert "reconnecting" in err
        assert "missed" not in err
        # the README's one style for a warning (it said `satctl: WatchEvents: UNAVAILABLE: ...`)
        assert all(line.startswith("satctl: warning: ") for line in err.splitlines()), err
        assert relay.connections >= 2
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await relay.stop()


def _every_kind() -> list:
    """One Event of each kind: all fields zero/empty, and all set."""
    from google.protobuf import timestamp_pb2

    from satbridge.api.v1 import system_pb2 as s

    full = {
        "subscribed": s.Subscribed(newest_seq=2**63),
        "lost": s.EventsLost(reason=s.EventsLost.OUT_OF_RING, first_available_seq=7),
        "xcc": s.XccUnitChanged(active_state="failed", sub_state="failed", main_pid=0, result="signal"),
        "install": s.InstallProgress(phase="ROLLED_BACK", message="m", percent=100, version="1.2.3", reason="r"),
        "firewall": s.FirewallChanged(action=s.FirewallChanged.ROLLED_BACK, revision=2**64 - 1, reason="x", by="cli"),
        "network": s.NetworkChanged(action=s.NetworkChanged.REVERTED, what="dhcp", reason="timer"),
        "pairing": s.PairingChanged(action=s.PairingChanged.ATTEMPT_FAILED, source="192.0.2.1", attempts_left=4),
        "resource": s.ResourceLow(resource=s.ResourceLow.DISK, low=True, free_bytes=1, total_bytes=2**40),
        "bridge": s.BridgeLifecycle(action=s.BridgeLifecycle.STOPPING, version="0.1"),
        "factory_reset": s.FactoryReset(by="console"),
    }
    events = []
    for name, message in full.items():
        events.append(s.Event(**{name: type(message)()}))  # every field at its zero value
        events.append(
            s.Event(
                seq=9, run="ab", state_generation=3, time=timestamp_pb2.Timestamp(seconds=1795867200), **{name: message}
            )
        )
    events.append(s.Event())  # no kind at all (a newer bridge's kind this satctl does not know)
    return events


@pytest.mark.parametrize("event", _every_kind(), ids=lambda e: e.WhichOneof("kind") or "none")
def test_watch_json_is_the_one_event_schema_with_every_key_and_one_type(event):
    """Issue 20's contract for `satctl watch --json`: protobuf's MessageToDict dropped zero values
    and printed 64-bit numbers as strings and enums in upper case; the event object has every key,
    ints as ints, enums as lower-case words, times as RFC 3339 seconds."""
    from satbridge.client import schema
    from satbridge.client.watch import as_line

    doc = json.loads(schema.dumps(schema.event(event)))
    assert schema.problems(doc, schema.SCHEMAS["event"]) == []
    name = event.WhichOneof("kind")
    if name:
        assert doc["kind"] == name
        assert doc[name] is not None
        assert all(doc[other] is None for other in schema.EVENT_KINDS if other != name)
        words = [v for k, v in doc[name].items() if k in ("action", "resource", "phase")]
        assert words == [w.lower() for w in words]
    assert "\n" not in as_line(event)


def test_the_event_schema_names_every_kind_and_field_of_the_wire_message():
    """A kind or field added to system.proto's Event must reach `satctl watch --json` (and the
    README's row): the schema lists exactly the wire message's kinds and their fields."""
    from satbridge.api.v1 import system_pb2
    from satbridge.client import schema

    oneof = system_pb2.Event.DESCRIPTOR.oneofs_by_name["kind"]
    assert set(schema.EVENT_KINDS) == {f.name for f in oneof.fields}
    for f in oneof.fields:
        assert list(schema.EVENT_KINDS[f.name]) == [g.name for g in f.message_type.fields], f.name


def test_watch_json_follows_the_json_rules_of_every_other_object():
    """Found running the README: `satctl watch --json` printed the proto3 JSON mapping, so a
    firewall revision was the string "1" (the `firewall` object's is a number), enums were
    upper-case ("SET", "VERIFYING"; `update --json` says "verifying") and no schema_version."""
    from satbridge.api.v1 import system_pb2
    from satbridge.client.schema import event as as_json
    from satbridge.client.watch import as_line

    event = system_pb2.Event(
        seq=3, state_generation=4, run="r", firewall=system_pb2.FirewallChanged(action=1, revision=7, by="c")
    )
    event.time.FromSeconds(1_800_000_000)
    doc = as_json(event)
    assert doc["schema_version"] == 1
    assert doc["firewall"] == {"action": "set", "revision": 7, "reason": "", "by": "c"}
    assert doc["time"] == "2027-01-15T08:00:00Z"
    assert "firewall action=set revision=7 by=c" in as_line(event)  # the words of the JSON
    install = system_pb2.Event(seq=4, install=system_pb2.InstallProgress(phase="VERIFYING", percent=5))
    assert as_json(install)["install"]["phase"] == "verifying"
    assert as_json(install)["install"]["percent"] == 5
    lost = system_pb2.Event(lost=system_pb2.EventsLost(reason=1, first_available_seq=2**40))
    assert as_json(lost)["lost"] == {"reason": "out_of_ring", "first_available_seq": 2**40}
    resource = system_pb2.Event(resource=system_pb2.ResourceLow(resource=1, low=True, free_bytes=2**33))
    assert as_json(resource)["resource"] == {"resource": "disk", "low": True, "free_bytes": 2**33, "total_bytes": 0}


async def test_watch_from_now_cut_before_any_event_does_not_replay_older_ones(running, inventory):
    """Red team 22: `satctl watch` (no --since: only new events) cut after `subscribed` but
    before its first event resumed with since=0 and the run, which means "from the start of the
    run": it printed every older event in the ring as if new."""
    sat = await pair_with(running, inventory)
    relay = Relay(running.bound.management)
    inventory.satellites[sat.name] = dataclasses.replace(sat, port=await relay.start())
    inventory.save()
    bus = running.bridge.events
    for i in range(3):
        bus.publish(ev.NetworkChanged("CHANGED", f"old {i}"))
    await asyncio.sleep(0.6)  # the pairing's own events (audit feed) are out before watch starts
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "satbridge.client",
        "--config-dir",
        str(inventory.directory),
        "watch",
        "--json",
        "--count",
        "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        for _ in range(100):  # subscribed: the bus has it
            if bus.subscribers:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # the `subscribed` message reached satctl
        relay.cut()
        await asyncio.sleep(1.0)
        relay.mend()
        for _ in range(100):  # satctl is back
            if relay.connections >= 2 and bus.subscribers:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        bus.publish(ev.NetworkChanged("CHANGED", "new 1"))
        bus.publish(ev.NetworkChanged("CHANGED", "new 2"))
        seen = await _lines(proc.stdout, 2, 20)
        assert [line.get("network", {}).get("what") for line in seen] == ["new 1", "new 2"]  # type: ignore[union-attr]
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await relay.stop()


async def test_watch_exits_141_at_once_when_its_reader_goes_away(running, inventory):
    """Red team 22: `satctl watch | head -1` went on (holding one of the bridge's 64 stream
    slots) until the next event's write failed, which may be hours on a quiet satellite."""
    import os
    import time

    await pair_with(running, inventory)
    bus = running.bridge.events
    await asyncio.sleep(0.6)
    read_end, write_end = os.pipe()
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "satbridge.client",
        "--config-dir",
        str(inventory.directory),
        "watch",
        stdout=write_end,
        stderr=asyncio.subprocess.PIPE,
    )
    os.close(write_end)
    try:
        for _ in range(100):
            if bus.subscribers:
                break
            await asyncio.sleep(0.1)
        bus.publish(ev.NetworkChanged("CHANGED", "one"))
        reader = os.fdopen(read_end, "rb")
        line = await asyncio.to_thread(reader.readline)  # what `head -1` reads, then it exits
        assert b"network" in line
        reader.close()
        started = time.monotonic()
        assert await asyncio.wait_for(proc.wait(), 10) == 141
        assert time.monotonic() - started < 5
        assert proc.stderr is not None
        assert b"Traceback" not in await proc.stderr.read()
        for _ in range(50):  # its stream slot is free again
            if not bus.subscribers:
                break
            await asyncio.sleep(0.1)
        assert not bus.subscribers
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_watch_with_no_satellite_paired_says_so(tmp_path):
    """Red team 22: `satctl watch` on an empty inventory said "no satellite named ''"."""
    import subprocess

    done = subprocess.run(
        [PY, "-m", "satbridge.client", "--config-dir", str(tmp_path), "watch"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 6
    assert "no satellite is paired yet" in done.stderr
    assert "Traceback" not in done.stderr


def _varint(n: int) -> bytes:
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([low])
        out += bytes([low | 0x80])


def _newer_bridge_events() -> list[bytes]:
    """Event bytes as a newer bridge sends them: an enum number this proto does not name in
    every kind that has an enum, and a kind (field 30) this proto does not know."""
    from satbridge.api.v1 import system_pb2

    raws = []
    for field in system_pb2.Event.DESCRIPTOR.oneofs_by_name["kind"].fields:
        for sub in field.message_type.fields:
            if sub.enum_type is not None:
                inner = bytes([sub.number << 3]) + _varint(99)
                raws.append(b"\x08\x05" + _varint(field.number << 3 | 2) + _varint(len(inner)) + inner)
    raws.append(b"\x08\x06" + _varint(30 << 3 | 2) + b"\x02\x08\x01")
    return raws


@pytest.mark.parametrize("raw", _newer_bridge_events())
def test_an_event_from_a_newer_bridge_is_shown_not_a_crash(raw):
    """Red team: an unknown enum number raised KeyError in schema.event (and `satctl watch`
    died with a traceback); an unknown kind gives kind "" with every known kind null."""
    from satbridge.api.v1 import system_pb2
    from satbridge.client import schema
    from satbridge.client.watch import as_line

    event = system_pb2.Event.FromString(raw)
    doc = json.loads(schema.dumps(schema.event(event)))
    assert schema.problems(doc, schema.SCHEMAS["event"]) == []
    name = event.WhichOneof("kind")
    if name:
        assert "unknown_99" in doc[name].values()
        assert "unknown_99" in as_line(event)
    else:
        assert doc["kind"] == ""
        assert all(doc[k] is None for k in schema.EVENT_KINDS)


def test_unknown_enum_numbers_are_words_everywhere_satctl_shows_them():
    from satbridge.api.v1 import firewall_pb2, system_pb2, update_pb2
    from satbridge.client import schema

    assert schema.enum_word(system_pb2.EventsLost.Reason.DESCRIPTOR, 99) == "unknown_99"
    assert schema.enum_word(update_pb2.InstallEvent.Phase.DESCRIPTOR, 0) == ""
    assert schema.enum_word(firewall_pb2.Action.DESCRIPTOR, 99) == "unknown_99"
