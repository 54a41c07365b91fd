"""The firewall adapter's guard and encoding helpers, without touching any kernel table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from satbridge.errors import FailedPrecondition
from satbridge.system.iptables import LAB_NETNS_ENV, IptcFirewall, lab_netns_problem

TOP = Path(__file__).resolve().parents[2]


def test_a_bridge_rooted_elsewhere_never_decides_by_itself_that_it_may_touch_the_kernel(tmp_path):
    """Issue 15 item 8: here PID 1 lives in another network namespace, so "am I in PID 1's
    namespace?" said "no" in the machine's own namespace. Only an explicit lab name counts."""
    firewall = IptcFirewall(tmp_path)
    with pytest.raises(FailedPrecondition, match=LAB_NETNS_ENV):
        firewall._guard()
    assert lab_netns_problem(tmp_path, None)
    assert lab_netns_problem(tmp_path, "")


@pytest.mark.parametrize("name", ["no-such-lab-netns-15", "../../proc/1/ns/net", "..", "."])
def test_a_lab_name_that_is_not_our_namespace_is_refused(tmp_path, name):
    assert lab_netns_problem(tmp_path, name)
    with pytest.raises(FailedPrecondition):
        IptcFirewall(tmp_path, lab_netns=name)._guard()


def test_the_appliance_bridge_rooted_at_slash_needs_no_lab_name():
    assert lab_netns_problem(Path("/"), None) is None


async def test_apply_refuses_before_reading_or_writing_anything(tmp_path):
    from satbridge.core import firewall as fw

    firewall = IptcFirewall(tmp_path)
    try:
        with pytest.raises(FailedPrecondition):
            await firewall.apply(fw.plan(fw.RuleSet(), (50051, 50052)), None)
    finally:
        await firewall.close()
    assert not (tmp_path / "run").exists(), "not even the xtables lock was taken"


def test_the_bench_inside_step_refuses_outside_its_namespace(tmp_path):
    """`bench/firewall.py --inside` run by hand (no lab namespace named) stops before any table."""
    env = {k: v for k, v in os.environ.items() if k != LAB_NETNS_ENV}
    done = subprocess.run(
        [sys.executable, str(TOP / "bench/firewall.py"), "--inside", "--rounds", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode != 0
    if os.geteuid() == 0:
        assert "not in its own namespace" in done.stderr, done.stderr


async def test_a_no_op_set_reads_each_filter_table_once(tmp_path, monkeypatch):
    """Issue 21: a no-op Set ran iptables-legacy-save four times (foreign_ahead, then apply) and
    twice more for the Get it returns. One read per family now serves all three steps, and a
    plain Get afterwards reads the kernel again (nothing kept for it)."""
    from satbridge.core import firewall as fw
    from satbridge.system import iptables
    from satbridge.system.runner import Completed

    plan = fw.plan(fw.RuleSet(), (50051, 50052))
    calls: list[list[str]] = []

    async def fake_run(argv: list[str], **_: object) -> Completed:
        calls.append(argv)
        if argv[0] in ("iptables-legacy-save", "ip6tables-legacy-save"):
            family = "v6" if argv[0].startswith("ip6") else "v4"
            text = "\n".join(["*filter", *fw.expected_lines(plan, family), "COMMIT", ""])
            return Completed(0, text.encode(), b"")
        return Completed(1, b"", b"not here")

    monkeypatch.setattr(iptables, "run", fake_run)
    monkeypatch.setattr(iptables, "lab_netns_problem", lambda root, lab: None)
    firewall = IptcFirewall(tmp_path)
    try:
        assert await firewall.foreign_ahead() == {"v4": [], "v6": []}
        assert await firewall.apply(plan, plan) == []  # no-op: nothing built, nothing committed
        await firewall.warnings()
        saves = [argv for argv in calls if argv[0].endswith("legacy-save")]
        assert sorted(argv[0] for argv in saves) == ["ip6tables-legacy-save", "iptables-legacy-save"]
        calls.clear()
        await firewall.warnings()
        assert len([argv for argv in calls if argv[0].endswith("legacy-save")]) == 2
    finally:
        await firewall.close()


async def test_a_read_left_by_a_no_op_restore_never_serves_the_next_set(tmp_path, monkeypatch):
    """Red team 21: a restore (or a rollback) that found nothing to do left its read behind, and
    each reuse stamped it young again, so a Set within a second read the kernel as it was
    before someone flushed SATBRIDGE-IN by hand, found nothing to do and left the hole open.
    Every Set's foreign_ahead reads the kernel; apply uses only that read; warnings at most."""
    from satbridge.core import firewall as fw
    from satbridge.system import iptables
    from satbridge.system.runner import Completed

    plan = fw.plan(fw.RuleSet(), (50051, 50052))
    kernel = {f: fw.expected_lines(plan, f) for f in ("v4", "v6")}
    saves: list[str] = []

    async def fake_run(argv: list[str], **_: object) -> Completed:
        if argv[0] in ("iptables-legacy-save", "ip6tables-legacy-save"):
            family = "v6" if argv[0].startswith("ip6") else "v4"
            saves.append(family)
            return Completed(0, "\n".join(["*filter", *kernel[family], "COMMIT", ""]).encode(), b"")
        return Completed(1, b"", b"not here")

    committed: list[list[str]] = []
    monkeypatch.setattr(iptables, "run", fake_run)
    monkeypatch.setattr(iptables, "lab_netns_problem", lambda root, lab: None)
    firewall = IptcFirewall(tmp_path)
    monkeypatch.setattr(firewall, "_apply_locked", lambda plan, previous, todo, slow: committed.append(todo))
    try:
        await firewall.foreign_ahead()  # restore() at start: the kernel already holds the plan
        assert await firewall.apply(plan, None) == []
        kernel["v4"] = [line for line in kernel["v4"] if not line.startswith("-A SATBRIDGE-IN")]  # iptables -F
        kernel["v6"] = [line for line in kernel["v6"] if line != "-A INPUT -j SATBRIDGE-IN"]
        await firewall.foreign_ahead()  # the next Set, same task, well within SEEN_S
        assert await firewall.apply(plan, plan) == ["v4", "v6"]
        assert committed == [["v4", "v6"]]
        saves.clear()
        committed.clear()
        assert await firewall.apply(plan, plan) == ["v4", "v6"], "an apply without its own read reads the kernel"
        assert sorted(saves) == ["v4", "v6"]
    finally:
        await firewall.close()
