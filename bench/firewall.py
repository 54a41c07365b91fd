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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from satbridge.core import firewall as fw
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


async def ours(adapter: IptcFirewall, plan: fw.Plan) -> float:
    start = time.perf_counter()
    await adapter.apply(plan, None)
    return time.perf_counter() - start


def flush() -> None:
    for tool in ("iptables-legacy", "ip6tables-legacy"):
        subprocess.run([tool, "-F"], check=True)
        subprocess.run([tool, "-X"], check=True)


async def main(rounds: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="satbridge-fw-"))
    lab = os.environ.get(LAB_NETNS_ENV)
    problem = lab_netns_problem(root, lab)
    if problem:  # flush() below runs iptables directly: check before anything touches a table
        sys.exit(f"bench/firewall.py: not in its own namespace: {problem}")
    adapter = IptcFirewall(root, lab_netns=lab)
    print(f"| rules per family | satbridge apply ms | iptables-legacy-restore ms | ratio | ({rounds} rounds) |")
    print("|---|---|---|---|---|")
    for n in (100, 1000):
        plans = [fw.plan(rules(n, 0), PORTS), fw.plan(rules(n, 5000), PORTS)]
        a, b, noop, noop_ref = [], [], [], []
        for r in range(rounds):
            flush()
            a.append(await ours(adapter, plans[r % 2]))
            noop.append(await ours(adapter, plans[r % 2]))
            flush()
            b.append(restore(plans[r % 2]))
            noop_ref.append(restore(plans[r % 2]))
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"| {n} | {ma * 1e3:.0f} | {mb * 1e3:.1f} | {ma / mb:.1f}x | change from empty |")
        mn, mr = statistics.median(noop), statistics.median(noop_ref)
        print(f"| {n} | {mn * 1e3:.1f} | {mr * 1e3:.1f} | {mn / mr:.1f}x | no-op re-apply (restore rewrites) |")
    await adapter.close()


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
