"""What the bridge writes into the kernel is, byte for byte, what iptables-legacy-restore writes
for the same plan (issue 15, item 1): a generated corpus of plans (both families, every match the
planner uses, interface names of every shape), applied through the bridge's adapter in one lab
namespace and through ip(6)tables-legacy-restore of the plan's save text in another; the raw
kernel entries (getsockopt IPT_SO_GET_ENTRIES, counters zeroed) must be equal. Save text is not
enough: an `-i lo` with a 0x01 mask prints as `-i lo` too. The corpus includes the bridge's
per-source shares of its ports (connlimit, tcp-reset; issue 16) with drawn limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satbridge.core import firewall as fw
from tests.firewall_strategies import interface_names, rule_sets
from tests.lab.iptables_entries import plan_to_json
from tests.lab.netns import NetLab, netns_pair

pytestmark = pytest.mark.lab
TOP = Path(__file__).resolve().parents[2]
PORTS = (50051, 50052)
SHARES = (fw.BridgePort(50051, 32), fw.BridgePort(50052, 16))  # the config's defaults
BUDGET_S = 90.0  # the corpus stops growing after this long (hypothesis counts examples, not time)


class Worker:
    def __init__(self, net: NetLab, ns: str, mode: str) -> None:
        self.proc = net.popen(
            ns,
            sys.executable,
            "-m",
            "tests.lab.iptables_entries",
            "worker",
            mode,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=TOP,
            text=True,
        )

    def put(self, plan: fw.Plan) -> dict[str, list[str]]:
        assert self.proc.stdin
        assert self.proc.stdout
        self.proc.stdin.write(plan_to_json(plan) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, list[str]] = json.loads(self.proc.stdout.readline())
        return answer

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[Worker, Worker]]:
    with netns_pair(f"e{os.getpid() % 10000}") as net:
        bridge = Worker(net, net.satellite, "bridge")
        restore = Worker(net, net.client, "restore")
        try:
            yield bridge, restore
        finally:
            bridge.close()
            restore.close()


def with_interfaces(plan: fw.Plan, names: list[str], protos: list[str]) -> fw.Plan:
    """The plan, plus one XCC rule per interface name (the planner itself only writes `-i lo`)."""
    chains = {}
    for family, specs in plan.chains.items():
        extra = [
            fw.Spec(
                fw.XCC_CHAIN,
                "ACCEPT",
                iface=name,
                proto=proto.replace("icmp", "ipv6-icmp" if family == "v6" else "icmp"),
            )
            for name, proto in zip(names, protos, strict=False)
        ]
        chains[family] = (*specs, *extra)
    return replace(plan, chains=chains)


def diff(ours: list[str], theirs: list[str]) -> str:
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a != b:
            return f"entry {i} differs:\n bridge  {a}\n restore {b}"
    return f"{len(ours)} entries against {len(theirs)}"


_started: list[float] = []


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    rules=rule_sets(),
    names=st.lists(interface_names(), max_size=4),
    protos=st.lists(st.sampled_from(["", "tcp", "udp", "icmp"]), min_size=4, max_size=4),
    shares=st.tuples(st.integers(0, 1024), st.integers(0, 1024)),
)
def test_the_kernel_holds_what_iptables_restore_would_write(workers, rules, names, protos, shares):
    if not _started:
        _started.append(time.monotonic())
    if time.monotonic() - _started[0] > BUDGET_S:
        return  # bounded in time: the examples so far ran, the rest are skipped quietly
    bridge, restore = workers
    ports = tuple(fw.BridgePort(port, share) for port, share in zip(PORTS, shares, strict=True))
    plan = with_interfaces(fw.plan(fw.validate(rules), ports), names, protos)
    ours, theirs = bridge.put(plan), restore.put(plan)
    assert "error" not in ours, ours
    assert "error" not in theirs, theirs
    for family in ("v4", "v6"):
        assert ours[family] == theirs[family], f"{family}: {diff(ours[family], theirs[family])}"


def test_ipv6_lo_mask_is_the_one_iptables_writes(workers):
    """The case from the issue, pinned: the factory plan's `-i lo` in both families."""
    bridge, restore = workers
    plan = fw.plan(fw.RuleSet(), PORTS)
    ours, theirs = bridge.put(plan), restore.put(plan)
    assert ours["v6"] == theirs["v6"], diff(ours["v6"], theirs["v6"])
    assert ours["v4"] == theirs["v4"], diff(ours["v4"], theirs["v4"])


def test_per_source_shares_are_the_ones_iptables_writes(workers):
    """The bridge's connlimit rules (issue 16, per-source shares), pinned: the kernel holds what
    iptables-legacy-restore writes for `-m connlimit --connlimit-above N --connlimit-mask 32|64
    --connlimit-saddr -j REJECT --reject-with tcp-reset`, in both families."""
    bridge, restore = workers
    plan = fw.plan(fw.RuleSet(), SHARES)
    assert any("--connlimit-mask 64" in line for line in plan.save_lines("v6"))
    ours, theirs = bridge.put(plan), restore.put(plan)
    assert "error" not in ours, ours
    assert "error" not in theirs, theirs
    assert ours["v4"] == theirs["v4"], diff(ours["v4"], theirs["v4"])
    assert ours["v6"] == theirs["v6"], diff(ours["v6"], theirs["v6"])
