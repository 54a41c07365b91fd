#!/usr/bin/env python3
"""WatchEvents: how soon an event reaches a subscriber, and what watching costs the bridge
against polling GetStatus (issue 22), same bridge, same run.

    .venv/bin/python bench/events.py [--rounds 50] [--clients 50] [--seconds 10] [--kills 20]

* latency, firewall: a subscriber's clock from the Set call's start to its FirewallChanged
  event (the audit-log path: the bridge writes the entry, inotify wakes the feed); the Set
  call's own round trip is the reference.
* latency, XCC: SIGKILL of xcc.service's main process (systemd's KillUnit) to the XccChanged
  event, on a real systemd (the appliance rootfs in nspawn; needs root and build/setup-labs.sh,
  skipped otherwise). The bridge runs in this process there, on the appliance's bus.
* CPU: the bridge process's CPU seconds over --seconds with 50 WatchEvents subscribers (each
  its own mutual-TLS connection) against 50 pollers of GetStatus at 5/s, with one firewall
  change a second during both (so the subscribers have something to receive).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from status_latency import bridge_cpu, poll

from satbridge.api.v1 import firewall_pb2
from satbridge.client.inventory import Inventory
from satbridge.client.session import SatelliteClient, connect
from tests.lab.bridge import satctl_pair, serving


def rules(port: int) -> firewall_pb2.FirewallRuleSet:
    rule = firewall_pb2.FirewallRule(
        family=firewall_pb2.BOTH,
        protocol=firewall_pb2.TCP,
        action=firewall_pb2.ACCEPT,
        ports=[firewall_pb2.PortRange(first=port)],
    )
    return firewall_pb2.FirewallRuleSet(rules=[rule], default_action=firewall_pb2.REJECT)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


async def firewall_latency(client: SatelliteClient, rounds: int) -> tuple[list[float], list[float]]:
    """(Set start -> event, Set round trip), in seconds."""
    queue: asyncio.Queue[float] = asyncio.Queue()

    async def watch() -> None:
        async for event in client.watch_events():
            if event.HasField("firewall"):
                queue.put_nowait(time.perf_counter())

    task = asyncio.create_task(watch())
    latencies, calls = [], []
    try:
        await asyncio.sleep(0.5)
        for i in range(rounds):
            began = time.perf_counter()
            await client.firewall_call("Set", firewall_pb2.SetFirewallRequest(rules=rules(9000 + i % 2)))
            calls.append(time.perf_counter() - began)
            latencies.append(await asyncio.wait_for(queue.get(), 10) - began)
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return latencies, calls


async def changes(client: SatelliteClient, seconds: float) -> int:
    """One firewall change a second for `seconds`."""
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await client.firewall_call("Set", firewall_pb2.SetFirewallRequest(rules=rules(9100 + n % 2)))
        n += 1
        await asyncio.sleep(1.0)
    return n


async def subscribers(ctl: Path, clients: int, seconds: float) -> int:
    """`clients` WatchEvents streams, each on its own connection, for `seconds`; events received."""
    inv = Inventory.load(ctl)
    sat = inv.get(None)
    received = 0
    up = 0

    async def one() -> None:
        nonlocal received, up
        async with connect(sat, inv) as client:
            up += 1
            async for event in client.watch_events():
                if not event.HasField("subscribed"):
                    received += 1

    tasks = [asyncio.create_task(one()) for _ in range(clients)]
    while up < clients:
        await asyncio.sleep(0.05)
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return received


async def cpu_round(pid: int, client: SatelliteClient, work: asyncio.Future[object], seconds: float) -> float:
    await asyncio.sleep(1.0)  # connections up
    cpu = bridge_cpu(pid)
    await changes(client, seconds)
    used = bridge_cpu(pid) - cpu
    await work
    return used


async def xcc_latency(kills: int) -> list[float] | str:
    """SIGKILL -> XccChanged at a subscriber, on the nspawn appliance; a reason when skipped."""
    from satbridge.system.systemd import MANAGER, MANAGER_PATH, SYSTEMD, SystemdUnits
    from tests.conftest import loopback_config, pair_with, serve_bridge
    from tests.lab.appliance import booted, lab_skip_reason
    from tests.system.test_events_nspawn import RESTARTING

    reason = lab_skip_reason()
    if reason:
        return reason
    work = Path(tempfile.mkdtemp(prefix="satbridge-bench-ev-xcc-"))
    latencies: list[float] = []
    try:
        with booted("satbench", log=work / "nspawn.log") as lab:
            units = SystemdUnits(lab.bus_address, lab.root)
            try:
                await units.write_unit_file("xcc.service", RESTARTING)
                await units.run_job("start", "xcc.service", timeout=30)
                config = replace(loopback_config(work / "root"), dbus_address=lab.bus_address)
                async with serve_bridge(config) as run:
                    inv = Inventory.load(work / "ctl")
                    sat = await pair_with(run, inv)
                    async with connect(sat, inv) as client:
                        stream = client.watch_events()
                        await anext(stream)  # subscribed
                        await asyncio.sleep(1.0)
                        for _ in range(kills):
                            pid = (await units.state("xcc.service")).main_pid
                            began = time.perf_counter()
                            bus = await units.bus()
                            await bus.call(
                                SYSTEMD, MANAGER_PATH, MANAGER, "KillUnit", "ssi", ["xcc.service", "main", 9]
                            )
                            async for event in stream:
                                if event.HasField("xcc") and (
                                    event.xcc.main_pid != pid or event.xcc.active_state != "active"
                                ):
                                    latencies.append(time.perf_counter() - began)
                                    break
                            async for event in stream:  # restarted
                                xcc = event.xcc
                                if (
                                    event.HasField("xcc")
                                    and xcc.active_state == "active"
                                    and xcc.main_pid not in (0, pid)
                                ):
                                    break
                        await stream.aclose()
            finally:
                await units.run_job("stop", "xcc.service", timeout=30)
                await units.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return latencies


async def main(rounds: int, clients: int, seconds: float, kills: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="satbridge-bench-ev-"))
    try:
        root, ctl = work / "root", work / "ctl"
        with serving(root) as served:
            satctl_pair(served, ctl)
            inv = Inventory.load(ctl)
            async with connect(inv.get(None), inv) as client:
                latencies, calls = await firewall_latency(client, rounds)
                pid = served.proc.pid
                watched = asyncio.ensure_future(subscribers(ctl, clients, seconds + 1.5))
                cpu_watch = await cpu_round(pid, client, watched, seconds)
                received = watched.result()
                polled = asyncio.ensure_future(poll(ctl, clients, seconds + 1.5, 0.2))
                cpu_poll = await cpu_round(pid, client, polled, seconds)
                calls_polled = len(polled.result())
        xcc = await xcc_latency(kills)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| event latency | p50 ms | p99 ms | n |")
    print("|---|---|---|---|")
    print(
        f"| firewall Set -> FirewallChanged at a subscriber | {pct(latencies, 0.5):.1f} | {pct(latencies, 0.99):.1f} "
        f"| {len(latencies)} |"
    )
    print(f"| the Set call's round trip (reference) | {pct(calls, 0.5):.1f} | {pct(calls, 0.99):.1f} | {len(calls)} |")
    if isinstance(xcc, str):
        print(f"| kill -9 of XCC -> XccChanged (real systemd) | skipped: {xcc} | | |")
    else:
        print(
            f"| kill -9 of XCC -> XccChanged (real systemd) | {pct(xcc, 0.5):.1f} | {pct(xcc, 0.99):.1f} | {len(xcc)} |"
        )
    print()
    print(f"| bridge CPU, {clients} clients, {seconds:g} s, a firewall change a second | CPU s | % of a core | ratio |")
    print("|---|---|---|---|")
    print(
        f"| {clients} pollers of GetStatus at 5/s ({calls_polled} calls, reference) | {cpu_poll:.2f} "
        f"| {100 * cpu_poll / seconds:.1f} | 1.00x |"
    )
    print(
        f"| {clients} WatchEvents subscribers ({received} events received) | {cpu_watch:.2f} "
        f"| {100 * cpu_watch / seconds:.1f} | {cpu_watch / cpu_poll:.2f}x |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--kills", type=int, default=20)
    opts = parser.parse_args()
    asyncio.run(main(opts.rounds, opts.clients, opts.seconds, opts.kills))
