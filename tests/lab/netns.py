"""Network namespaces for the firewall lab: a client and a satellite joined by a veth pair.

Addresses come from 192.0.2.0/24 (TEST-NET-1) and 2001:db8:15::/64 (documentation). The
satellite's interface is `vs`, deliberately not `eth*` (issue 15, item 1). Nothing is added to the machine's own
namespace: the veth ends are created directly inside the two namespaces, and deleting the
namespaces (in `finally`) removes them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from satbridge.system.iptables import LAB_NETNS_ENV
from tests.lab.lock import exclusive

CLIENT_IP = "192.0.2.1"
SATELLITE_IP = "192.0.2.2"
CLIENT_IP6 = "2001:db8:15::1"
SATELLITE_IP6 = "2001:db8:15::2"


def lab_env(ns: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a command run in the lab namespace `ns`: it tells a bridge rooted
    elsewhere than / that it may change the firewall there, and only there (the bridge checks
    that it really runs in `ns`)."""
    return {**(os.environ if env is None else env), LAB_NETNS_ENV: ns}


@dataclass(frozen=True)
class NetLab:
    client: str
    satellite: str

    def run(
        self, ns: str, *argv: str, timeout: float = 60, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout, env=lab_env(ns, env)
        )
        if check and done.returncode:
            raise AssertionError(f"{argv} in {ns} failed ({done.returncode}): {done.stdout}{done.stderr}")
        return done

    def popen(
        self, ns: str, *argv: str, env: dict[str, str] | None = None, **kwargs: object
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], env=lab_env(ns, env), **kwargs)  # type: ignore[call-overload]

    def save(self, family: str = "v4") -> str:
        """The satellite's filter table, without the timestamps and packet counters that
        change with every packet."""
        tool = "iptables-legacy-save" if family == "v4" else "ip6tables-legacy-save"
        out = self.run(self.satellite, tool, "-t", "filter").stdout
        lines = [re.sub(r" \[\d+:\d+\]$", "", line) for line in out.splitlines() if not line.startswith("#")]
        return "\n".join(lines) + "\n"


def netns_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the firewall lab needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables-legacy-save", "iptables-legacy-restore"):
        if not shutil.which(tool):
            return f"{tool} is missing (apt-get install iproute2 iptables)"
    return None


@contextmanager
def netns_pair(tag: str) -> Iterator[NetLab]:
    reason = netns_skip_reason()
    if reason:
        pytest.skip(reason)
    lab = NetLab(f"sbc-{tag}", f"sbs-{tag}")
    with exclusive(f"netns-{tag}"):
        for ns in (lab.client, lab.satellite):  # left by a run that was killed: ours, start clean
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        with _made(lab) as made:
            yield made


@contextmanager
def _made(lab: NetLab) -> Iterator[NetLab]:
    made: list[str] = []
    try:
        for ns in (lab.client, lab.satellite):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            made.append(ns)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(
            [
                "ip",
                "link",
                "add",
                "vc",
                "netns",
                lab.client,
                "type",
                "veth",
                "peer",
                "name",
                "vs",
                "netns",
                lab.satellite,
            ],
            check=True,
        )
        for ns, dev, ip, ip6 in (
            (lab.client, "vc", CLIENT_IP, CLIENT_IP6),
            (lab.satellite, "vs", SATELLITE_IP, SATELLITE_IP6),
        ):
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev], check=True)
            # nodad: usable at once, no duplicate address detection wait
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip6}/64", "dev", dev, "nodad"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        yield lab
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)
