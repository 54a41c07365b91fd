#!/usr/bin/env python3
"""Applying N rules (IPv4 + IPv6) through the bridge's adapter, against iptables-legacy-restore
of the very same rules, in the same run, inside a private network namespace.

    sudo .venv/bin/python bench/firewall.py [--rounds N]

Every run creates its own network namespace (`ip netns add satbridge-bench-PID`), unconditionally,
re-executes itself inside it with SATBRIDGE_LAB_NETNS naming it, and deletes it at the end (also
when interrupted). It never asks whether it already is in a private namespace: on a machine whose
PID 1 lives in another namespace, such a check said "private" in the machine's own namespace, and
the bench once changed that machine's firewall (issue 15, item 8). Inside, the adapter itself
checks that it really runs in the named namespace before it touches iptables.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from satbridge.core import firewall as fw
from satbridge.services.firewall import FirewallService
from satbridge.services.state import StateService
from satbridge.system.audit import FileAuditLog
from satbridge.system.files import ConfigDir, DirStore, FileLocks
from satbridge.system.iptables import LAB_NETNS_ENV, IptcFirewall, lab_netns_problem

PORTS = (50051, 50052)


def rules(n: int, offset: int) -> fw.RuleSet:
    return fw.validate(
        fw.RuleSet(
            tuple(
                fw.Rule(
                    fw.Family.BOTH,
                    fw.Protocol.TCP,
                    fw.Action.ACCEPT,
                    (fw.PortRange(1000 + offset + i, 1000 + offset + i),),
                    comment=f"rule-{i}",
                )
                for i in range(n)
            ),
            fw.Action.DROP,
        )
    )


def restore_text(plan: fw.Plan, family: str) -> str:
    return "\n".join(
        [
            "*filter",
            f":{fw.IN_CHAIN} - [0:0]",
            f":{fw.XCC_CHAIN} - [0:0]",
            *fw.expected_lines(plan, family),
            "COMMIT",
            "",
        ]
    )


def restore(plan: fw.Plan) -> float:
    start = time.perf_counter()
    for tool, family in (("iptables-legacy-restore", "v4"), ("ip6tables-legacy-restore", "v6")):
        subprocess.run([tool], input=restore_text(plan, family), text=True, check=True)
    return time.perf_counter() - start


def flush() -> None:
    for tool in ("iptables-legacy", "ip6tables-legacy"):
        subprocess.run([tool, "-F"], check=True)
        subprocess.run([tool, "-X"], check=True)


def service(root: Path, adapter: IptcFirewall) -> FirewallService:
    """The firewall service as the bridge wires it (state files, locks, fsynced audit log)."""
    store = DirStore(root / "state")
    return FirewallService(
        adapter,
        store,
        FileLocks(root / "state"),
        FileAuditLog(root / "audit.log"),
        StateService(store, secrets.token_bytes),
        time.time,
        ConfigDir(root / "etc"),
        PORTS,
    )


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


async def main(rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="satbridge-fw-"))
    try:
        await measure(root, rounds)
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def measure(root: Path, rounds: int) -> None:
    lab = os.environ.get(LAB_NETNS_ENV)
    problem = lab_netns_problem(root, lab)
    if problem:  # flush() below runs iptables directly: check before anything touches a table
        sys.exit(f"bench/firewall.py: not in its own namespace: {problem}")
    # Once per process, outside the timing: importing python-iptables (0.2 s) and loading its
    # extensions (what a running bridge did at start, when it restored the rules).
    warm = IptcFirewall(root, lab_netns=lab)
    flush()
    await warm.apply(fw.plan(rules(10, 0), PORTS), None)
    await warm.close()
    print(f"| rules per family | satbridge ms | reference ms | ratio | goal | what ({rounds} rounds) |")
    print("|---|---|---|---|---|---|")
    for n in (100, 1000):
        sets = [rules(n, 0), rules(n, 5000)]
        plans = [fw.plan(r, PORTS) for r in sets]
        # a tenth of the rules changed: the rest are reused from the adapter's cache
        tenth = fw.validate(replace(sets[0], rules=sets[1].rules[: n // 10] + sets[0].rules[n // 10 :]))
        cold, warm, noop, ref, noop_ref = [], [], [], [], []
        for _ in range(rounds):
            adapter = IptcFirewall(root, lab_netns=lab)  # a new adapter: nothing built before
            flush()
            cold.append(await timed(lambda: adapter.apply(plans[0], None)))  # noqa: B023
            noop.append(await timed(lambda: adapter.apply(plans[0], None)))  # noqa: B023
            warm.append(await timed(lambda: adapter.apply(fw.plan(tenth, PORTS), plans[0])))  # noqa: B023
            await adapter.close()
            flush()
            ref.append(restore(plans[0]))
            noop_ref.append(restore(plans[0]))
        row(n, cold, ref, "10x", "apply from empty, new adapter (every rule built) vs restore")
        row(n, warm, ref, "", "apply changing a tenth of the rules (the rest reused) vs restore from empty")
        row(n, noop, noop_ref, "", "no-op re-apply (restore rewrites)")
    # The whole use case, as a Set RPC runs it (validation, state file, audit, the Get it returns).
    n = 1000
    sets = [rules(n, 0), rules(n, 5000)]
    flush()
    sv_set, sv_noop, sv_get, ref = [], [], [], []
    for r in range(rounds):
        adapter = IptcFirewall(root, lab_netns=lab)
        svc = service(root / f"svc{r}", adapter)
        sv_set.append(await timed(lambda: svc.set(sets[r % 2], by="bench")))  # noqa: B023
        sv_noop.append(await timed(lambda: svc.set(sets[r % 2], by="bench")))  # noqa: B023
        sv_get.append(await timed(svc.get))
        await adapter.close()
        flush()
        ref.append(restore(fw.plan(sets[r % 2], PORTS)))
    row(n, sv_set, ref, "", "FirewallService.set of a new set (new adapter) vs restore")
    row(n, sv_noop, sv_get, "1.5x", "FirewallService.set of the set in force vs FirewallService.get")


def row(n: int, ours: list[float], ref: list[float], goal: str, what: str) -> None:
    a, b = statistics.median(ours), statistics.median(ref)
    verdict = "" if not goal else (" met" if a / b <= float(goal[:-1]) else " NOT met")
    print(f"| {n} | {a * 1e3:.1f} | {b * 1e3:.1f} | {a / b:.2f}x | {'<= ' + goal + verdict if goal else ''} | {what} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/firewall.py needs root (it runs in its own network namespace)")
    if opts.inside:
        asyncio.run(main(opts.rounds))
        sys.exit(0)
    ns = f"satbridge-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        env = {**os.environ, LAB_NETNS_ENV: ns}
        argv = [sys.executable, str(Path(__file__).resolve()), "--inside", "--rounds", str(opts.rounds)]
        sys.exit(subprocess.run(["ip", "netns", "exec", ns, *argv], env=env, check=False).returncode)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
