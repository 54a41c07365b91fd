"""WatchEvents with the real firewall (python-iptables in a netns, tests/system/test_firewall_netns.py's
lab): a subscriber in the client's namespace (`satctl watch --json`) sees the Set and, when the
commit-confirm timer fires, the rollback, with the kernel's rules already put back."""

from __future__ import annotations

import json
import selectors
import subprocess
import time

import pytest

from tests.system.test_firewall_netns import PY, SIP, TOP, FwLab, lab, set_request  # noqa: F401 - lab: fixture

pytestmark = pytest.mark.lab


def _next_firewall(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, object]:
    """The next firewall event satctl watch prints (one JSON object a line)."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no firewall event in time"
        if selector.select(left):
            line = proc.stdout.readline()
            assert line, "satctl watch ended"
            event = json.loads(line)
            if event["kind"] == "firewall":
                return event


def test_a_rollback_reaches_the_subscriber_when_it_happens(lab: FwLab) -> None:  # noqa: F811 - the fixture
    watch = lab.net.popen(
        lab.net.client,
        PY,
        "-m",
        "satbridge.client",
        "--config-dir",
        str(lab.ctl),
        "watch",
        "--json",
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=TOP,
    )
    try:
        time.sleep(1.5)  # subscribed (satctl starts in about a second)
        started = time.monotonic()
        (pending,) = lab.calls(set_request(SIP, timeout=2))
        assert pending["code"] == "OK"
        revision = pending["state"]["pendingRevision"]
        event = _next_firewall(watch, 10)
        assert (event["firewall"]["action"], event["firewall"]["revision"]) == ("set", int(revision))
        event = _next_firewall(watch, 10)
        took = time.monotonic() - started
        assert (event["firewall"]["action"], event["firewall"]["revision"]) == ("rolled_back", int(revision))
        assert event["firewall"]["reason"] == "not confirmed in time"
        assert not any(line.startswith("-A SATBRIDGE-XCC") for line in lab.bridge_lines()), "kernel put back first"
        print(f"rollback event {took:.2f} s after a Set with a 2 s confirm timeout")
        assert took < 2 + 1.5
    finally:
        watch.kill()
        watch.wait()
