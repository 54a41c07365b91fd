"""The kernel's own copy of a filter table, entry by entry (raw bytes, counters zeroed).

What `iptables-legacy-save` prints is decoded from these entries, and two different entries can
print the same text: an `-i lo` whose mask is 0x01 bytes instead of 0xff prints as `-i lo` (issue
15, item 1). So the encoding test compares these bytes, read with getsockopt(IPT_SO_GET_INFO,
IPT_SO_GET_ENTRIES) exactly as libiptc reads them (linux/netfilter_ipv4/ip_tables.h,
linux/netfilter_ipv6/ip6_tables.h).

    ip netns exec NS python -m tests.lab.iptables_entries worker bridge|restore

runs a worker in a lab namespace: each line on stdin is a plan (plan_to_json), which it puts into
the kernel (through the bridge's adapter, or through ip(6)tables-legacy-restore of the plan's
save text), and answers one line: {"v4": [hex entries], "v6": [...]}, or {"error": "..."}.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from satbridge.core import firewall as fw

SO_GET_INFO, SO_GET_ENTRIES = 64, 65  # IPT_SO_GET_INFO, IPT_SO_GET_ENTRIES (same for IP6T_)
# family: (address family, sockopt level, counters' offset in an entry, next_offset's offset)
LAYOUT = {"v4": (socket.AF_INET, socket.IPPROTO_IP, 96, 90), "v6": (socket.AF_INET6, socket.IPPROTO_IPV6, 152, 142)}
GETINFO_SIZE = 84  # name[32], valid_hooks, hook_entry[5], underflow[5], num_entries, size
ENTRIES_HEADER = 40  # name[32], size, then the entries (8-byte aligned: they hold u64 counters)

_libc = ctypes.CDLL(None, use_errno=True)


def _getsockopt(fd: int, level: int, opt: int, buf: ctypes.Array[ctypes.c_char]) -> None:
    size = ctypes.c_uint32(len(buf))
    if _libc.getsockopt(fd, level, opt, buf, ctypes.byref(size)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def entries(family: str, table: str = "filter") -> tuple[bytes, list[bytes]]:
    """(hook offsets, entries) of `table` as the kernel holds it, counters zeroed."""
    af, level, counters, next_at = LAYOUT[family]
    with socket.socket(af, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
        info = ctypes.create_string_buffer(table.encode().ljust(32, b"\0"), GETINFO_SIZE)
        _getsockopt(sock.fileno(), level, SO_GET_INFO, info)
        size = int.from_bytes(info.raw[80:84], sys.byteorder)
        request = table.encode().ljust(32, b"\0") + size.to_bytes(4, sys.byteorder)
        buf = ctypes.create_string_buffer(request, ENTRIES_HEADER + size)
        _getsockopt(sock.fileno(), level, SO_GET_ENTRIES, buf)
    blob = buf.raw[ENTRIES_HEADER : ENTRIES_HEADER + size]
    out = []
    offset = 0
    while offset < size:
        step = int.from_bytes(blob[offset + next_at : offset + next_at + 2], sys.byteorder)
        entry = bytearray(blob[offset : offset + step])
        entry[counters : counters + 16] = bytes(16)
        out.append(bytes(entry))
        offset += step
    return info.raw[32:80], out


def plan_to_json(plan: fw.Plan) -> str:
    return json.dumps(
        {
            family: [
                [
                    s.chain,
                    s.target,
                    s.src,
                    s.iface,
                    s.proto,
                    [[n, list(map(list, p))] for n, p in s.matches],
                    list(map(list, s.target_params)),
                ]
                for s in specs
            ]
            for family, specs in plan.chains.items()
        }
    )


def plan_from_json(text: str) -> fw.Plan:
    data = json.loads(text)
    return fw.Plan(
        {
            family: tuple(
                fw.Spec(
                    chain,
                    target,
                    src,
                    iface,
                    proto,
                    tuple((n, tuple((k, v) for k, v in p)) for n, p in matches),
                    tuple((k, v) for k, v in params),
                )
                for chain, target, src, iface, proto, matches, params in specs
            )
            for family, specs in data.items()
        }
    )


def restore_text(plan: fw.Plan, family: str) -> str:
    """The plan as iptables-legacy-restore input: the whole filter table, INPUT's jump first."""
    return "\n".join(
        [
            "*filter",
            ":INPUT ACCEPT [0:0]",
            ":FORWARD ACCEPT [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            f":{fw.IN_CHAIN} - [0:0]",
            f":{fw.XCC_CHAIN} - [0:0]",
            *fw.expected_lines(plan, family),
            "COMMIT",
            "",
        ]
    )


async def _worker(mode: str) -> None:
    from satbridge.system.iptables import LAB_NETNS_ENV, IptcFirewall

    adapter = IptcFirewall(Path(tempfile.mkdtemp(prefix="satbridge-entries-")), lab_netns=os.environ[LAB_NETNS_ENV])
    try:
        for line in sys.stdin:
            plan = plan_from_json(line)
            try:
                if mode == "bridge":
                    await adapter.apply(plan, None)
                else:
                    for family, tool in (("v4", "iptables-legacy-restore"), ("v6", "ip6tables-legacy-restore")):
                        subprocess.run(  # noqa: ASYNC221 - one worker, one request at a time
                            [tool], input=restore_text(plan, family), text=True, check=True, capture_output=True
                        )
                answer: dict[str, object] = {}
                for family in ("v4", "v6"):
                    hooks, found = entries(family)
                    answer[family] = [hooks.hex(), *(e.hex() for e in found)]
            except Exception as exc:  # reported to the test, which fails with it
                stderr = getattr(exc, "stderr", "") or ""
                answer = {"error": f"{type(exc).__name__}: {exc} {stderr}"}
            print(json.dumps(answer), flush=True)
    finally:
        await adapter.close()


if __name__ == "__main__":
    asyncio.run(_worker(sys.argv[2]))
