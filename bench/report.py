#!/usr/bin/env python3
"""Run every benchmark and write one markdown report of ratios: bench/out/report.md.

    .venv/bin/python bench/report.py [--quick]

The firewall benchmark needs root (it makes its own network namespace); without root its
section says so. Each section is the benchmark's own table, measured in the same run as its
reference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    ("Start-up against import time", "startup.py", ["--rounds", "9"], ["--rounds", "3"]),
    ("Pairing latency", "pairing.py", ["--rounds", "30"], ["--rounds", "10"]),
    (
        "Package upload against an ssl copy and scp (256 MiB)",
        "upload.py",
        ["--rounds", "3"],
        ["--mib", "64", "--rounds", "1"],
    ),
    (
        "Package upload, 1 GiB (RSS flat in the size)",
        "upload.py",
        ["--mib", "1024", "--rounds", "1", "--uploads", "1"],
        None,
    ),
    (
        "GetStatus latency while an upload runs (50 clients)",
        "status_latency.py",
        ["--seconds", "10"],
        ["--seconds", "3", "--mib", "64"],
    ),
    ("Log download against an ssl copy (256 MiB)", "logs.py", ["--rounds", "3"], ["--mib", "64", "--rounds", "1"]),
    ("Firewall apply against iptables-legacy-restore", "firewall.py", ["--rounds", "5"], ["--rounds", "2"]),
    ("Soak: 10 minutes of mixed load, 8 clients (make soak)", "soak.py", ["--minutes", "10"], None),
    (
        "Events: latency, and 50 subscribers against 50 GetStatus pollers at 5/s",
        "events.py",
        ["--seconds", "10"],
        ["--seconds", "3", "--rounds", "10", "--kills", "5"],
    ),
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds")
    opts = parser.parse_args()
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    head = [
        f"# satbridge benchmarks, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}",
        "Every figure is a ratio against a reference run side by side in the same script.",
        "",
    ]
    sections: list[str] = []
    goals: list[str] = []
    for title, script, args, quick in BENCHES:
        chosen = quick if opts.quick else args
        if chosen is None:
            goals.append(f"| {title} | not run with --quick |")
            continue
        sections += [f"## {title}", ""]
        if script == "firewall.py" and os.geteuid() != 0:
            sections += ["(skipped: needs root for its own network namespace)", ""]
            continue
        done = subprocess.run([sys.executable, str(HERE / script), *chosen], capture_output=True, text=True)
        # Tables, the lines after them, and the blank lines between two tables of one benchmark.
        table = [line for line in done.stdout.splitlines() if not line or line.startswith(("|", "bridge", "server"))]
        table = "\n".join(table).strip("\n").split("\n") if any(table) else []
        sections += table or [f"(failed: {done.stderr.strip().splitlines()[-1:]})"]
        sections.append("")
        # Every row that states an issue-21 goal says whether this run met it: gathered on top.
        # (the row's own cells joined with " · ", so the summary keeps two columns whatever
        # shape each benchmark's table has)
        goals += [
            f"| {title} | {' · '.join(c.strip() for c in row.strip().strip('|').split('|') if c.strip())} |"
            for row in table
            if re.search(r"\bmet\b", row)
        ]
        print(f"{title}: done", file=sys.stderr)
    summary = ["## Goals (issue 21), as measured in this run", "", "| benchmark | row |", "|---|---|", *goals, ""]
    (out / "report.md").write_text("\n".join(head + summary + sections))
    print(out / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
