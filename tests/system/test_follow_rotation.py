"""The rotation harness: `satctl logs get NAME --follow` against GNU `tail -F` on the same writer.

A writer appends numbered lines at about 400 per second and rotates the log every 400 lines, in
the three ways logs are rotated: copytruncate (logrotate's copy, then truncate), rename and create,
and a symlink re-pointed to a new file (`ln -sfn`). satctl (through a real bridge process over TLS)
and `tail -F` follow the same name at the same time. Each run prints the lines each one lost and
duplicated; satctl may lose no line that tail -F kept, and duplicate none.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.lab.bridge import paired_bridge

PY = sys.executable
LINES = 2400
EVERY = 400  # lines between rotations
RATE = 400  # lines per second
BURST = 20000  # as fast as the writer can, nearly


def write(logdir: Path, mode: str, stop: threading.Event, rate: float) -> None:
    """Numbered lines into logdir/app.log (or app-K.log behind the symlink current.log)."""
    rotation = 0

    def target() -> Path:
        return logdir / (f"app-{rotation}.log" if mode == "symlink" else "app.log")

    out = open(target(), "a", buffering=1)  # noqa: SIM115 - reopened on rotation
    try:
        started = time.monotonic()
        for n in range(1, LINES + 1):
            out.write(f"line {n:06d}\n")
            if n % EVERY == 0 and n < LINES:
                rotation += 1
                if mode == "copytruncate":
                    shutil.copyfile(logdir / "app.log", logdir / f"app.log.{rotation}")
                    os.truncate(logdir / "app.log", 0)
                elif mode == "rename":
                    out.close()
                    (logdir / "app.log").rename(logdir / f"app.log.{rotation}")
                    out = open(target(), "a", buffering=1)  # noqa: SIM115
                else:
                    out.close()
                    out = open(target(), "a", buffering=1)  # noqa: SIM115
                    (logdir / "next").symlink_to(target().name)
                    (logdir / "next").rename(logdir / "current.log")
            pause = started + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if stop.is_set():
                return
    finally:
        out.close()


def tally(text: bytes) -> tuple[set[int], int]:
    counts = Counter(int(m) for m in re.findall(rb"^line (\d{6})$", text, re.M))
    lost = set(range(1, LINES + 1)) - set(counts)
    return lost, sum(c - 1 for c in counts.values())


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("mode", "rate"),
    [("copytruncate", RATE), ("rename", RATE), ("symlink", RATE), ("copytruncate", BURST), ("rename", BURST)],
    ids=["copytruncate", "rename", "symlink", "copytruncate-burst", "rename-burst"],
)
async def test_satctl_follow_keeps_every_line_tail_F_keeps(tmp_path, bus_address, mode, rate):
    if not shutil.which("tail"):
        pytest.fail("GNU tail is needed for the comparison (coreutils)")
    async with paired_bridge(tmp_path, bus_address) as (bridge, ctl):
        logdir = bridge.root / "var/log/xcc"
        logdir.mkdir(parents=True, exist_ok=True)
        name = "current.log" if mode == "symlink" else "app.log"
        (logdir / ("app-0.log" if mode == "symlink" else "app.log")).write_text("")
        if mode == "symlink":
            (logdir / "current.log").symlink_to("app-0.log")
        outs = {who: open(tmp_path / f"{who}.out", "wb") for who in ("satctl", "tail")}  # noqa: SIM115
        followers = {
            "satctl": await asyncio.create_subprocess_exec(
                PY, "-m", "satbridge.client", *ctl, "logs", "get", f"xcc/{name}", "-f", stdout=outs["satctl"]
            ),
            "tail": await asyncio.create_subprocess_exec(
                "tail",
                "-F",
                "-n",
                "+1",
                "-s",
                "0.1",
                str(logdir / name),
                stdout=outs["tail"],
                stderr=asyncio.subprocess.DEVNULL,
            ),
        }
        stop = threading.Event()
        try:
            await asyncio.sleep(1.0)  # both are following before the first line
            await asyncio.to_thread(write, logdir, mode, stop, rate)
            await asyncio.sleep(1.5)  # the last lines reach both
        finally:
            stop.set()
            for proc in followers.values():
                if proc.returncode is None:
                    proc.terminate()
                await proc.wait()
            for out in outs.values():
                out.close()
    results = {who: tally((tmp_path / f"{who}.out").read_bytes()) for who in outs}
    for who, (lost, duplicated) in results.items():
        print(
            f"{mode} at {rate} lines/s: {who}: {len(lost)} of {LINES} lines lost, {duplicated} duplicated",
            sorted(lost)[:30],
        )
    satctl_lost, satctl_duplicated = results["satctl"]
    tail_lost, _ = results["tail"]
    assert satctl_duplicated == 0
    assert not satctl_lost - tail_lost, f"satctl lost lines tail -F kept: {sorted(satctl_lost - tail_lost)[:20]}"
