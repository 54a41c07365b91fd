#!/usr/bin/env python3
"""Applying N rules (IPv4 + IPv6) through the bridge's adapter, against iptables-legacy-restore
of the very same rules, in the same run, inside a private network namespace.

    sudo .venv/bin/python bench/firewall.py [--rounds N]

Re-executes itself under `unshare -n`, so the machine's own firewall is never touched.
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
from satbridge.system.iptables import IptcFirewall, in_initial_netns

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
    adapter = IptcFirewall(Path(tempfile.mkdtemp(prefix="satbridge-fw-")))
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
    opts = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/firewall.py needs root (it runs in its own network namespace)")
    if in_initial_netns():
        os.execvp("unshare", ["unshare", "-n", sys.executable, *sys.argv])
    asyncio.run(main(opts.rounds))
