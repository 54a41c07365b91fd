"""`satctl watch` as a process, against an in-process bridge behind a TCP relay that the test
cuts: after 10 s without a connection it resumes with `since` and prints every event once, in
order (no gap: the ring still holds them)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys

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
        assert relay.connections >= 2
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await relay.stop()


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
