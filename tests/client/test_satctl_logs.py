"""satctl logs as an operator runs it on a terminal (a real pty), against a bridge process."""

from __future__ import annotations

import asyncio
import os
import pty
import sys
import time
from asyncio.subprocess import PIPE

from tests.lab.bridge import paired_bridge

PY = sys.executable


def read_pty(fd: int, until: bytes, timeout: float) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout
    while until not in seen and time.monotonic() < deadline:
        try:
            seen += os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.02)
        except OSError:  # EIO: the other side closed
            break
    return seen


async def test_following_on_a_terminal_shows_the_lines_only_and_escapes_controls(tmp_path, bus_address):
    """`satctl logs get NAME -f` on a terminal: no progress bar drawn into the text (it once
    showed "137.9% ... ETA -1s"), and escape sequences in the log shown, never executed."""
    async with paired_bridge(tmp_path, bus_address) as (bridge, ctl):
        await follow_on_a_terminal(bridge, ctl)


async def follow_on_a_terminal(bridge, ctl):
    log = bridge.root / "var/log/xcc/app.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"x" * 5000 + b"\nfirst\n")
    leader, follower = pty.openpty()
    os.set_blocking(leader, False)
    proc = await asyncio.create_subprocess_exec(
        PY, "-m", "satbridge.client", *ctl, "logs", "get", "xcc/app.log", "-f", stdout=follower, stderr=follower
    )
    os.close(follower)
    try:
        seen = await asyncio.to_thread(read_pty, leader, b"first", 20)
        with open(log, "ab") as f:
            f.write(b"\x1b]0;retitled\x07 second \x1b[2J\n" + b"y" * 20000 + b"\nthird\n")
        seen += await asyncio.to_thread(read_pty, leader, b"third", 20)
        assert b"third" in seen, seen[-500:]
        assert b"%" not in seen
        assert b"ETA" not in seen
        assert b"\x1b" not in seen
        assert b"\x07" not in seen
        assert b"\\x1b]0;retitled\\x07 second \\x1b[2J" in seen
    finally:
        proc.terminate()
        await proc.wait()
        os.close(leader)


async def test_a_download_to_a_file_shows_progress_and_keeps_the_bytes(tmp_path, bus_address):
    async with paired_bridge(tmp_path, bus_address) as (bridge, ctl):
        await download_to_a_file(bridge, ctl, tmp_path)


async def download_to_a_file(bridge, ctl, tmp_path):
    log = bridge.root / "var/log/xcc/app.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    data = b"\x1b[31m red \x07\n" * 100000
    log.write_bytes(data)
    leader, follower = pty.openpty()
    os.set_blocking(leader, False)
    out = tmp_path / "app.log"
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "satbridge.client",
        *ctl,
        "logs",
        "get",
        "xcc/app.log",
        "-o",
        str(out),
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    try:
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        shown = await asyncio.to_thread(read_pty, leader, b"100.0%", 5)
        assert b"100.0%" in shown, "a download with a known end shows its progress"
        assert out.read_bytes() == data, "a file gets the bytes exactly, escapes and all"
    finally:
        os.close(leader)


async def run_satctl(ctl: list[str], *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "satbridge.client",
        *ctl,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def test_resume_never_splices_two_files(tmp_path, bus_address):
    """`--resume` after the log was rotated: the bytes before the offset are fetched again and
    compared, so the partial file is never completed with another file's tail (exit 8)."""
    async with paired_bridge(tmp_path, bus_address) as (bridge, ctl):
        log = bridge.root / "var/log/xcc/app.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        old = b"".join(b"old %06d\n" % i for i in range(100000))
        log.write_bytes(old)
        part = tmp_path / "part.log"
        part.write_bytes(old[:300000])  # as a cut download leaves it
        rc, _, err = await run_satctl(ctl, "logs", "get", "xcc/app.log", "-o", str(part), "--resume")
        assert rc == 0, err
        assert part.read_bytes() == old, "an honest resume completes the file"
        part.write_bytes(old[:300000])
        log.rename(log.with_suffix(".log.1"))
        log.write_bytes(b"".join(b"new %06d\n" % i for i in range(100000)))
        rc, _, err = await run_satctl(ctl, "logs", "get", "xcc/app.log", "-o", str(part), "--resume")
        assert rc == 8, err
        assert "changed since" in err
        assert b"new " not in part.read_bytes()


async def test_odd_lines_and_times_are_refused_naming_the_flag(tmp_path, bus_address):
    async with paired_bridge(tmp_path, bus_address) as (_, ctl):
        for args, flag in (
            (["-n", "99999999999"], "--lines"),
            (["--since", "0001-01-01"], "--since"),
            (["--since", "9999-12-31T23:59:59-01:00"], "--since"),
            (["--since", "1969-12-31T23:00:00+00:00"], "since"),
        ):
            rc, _, err = await run_satctl(
                ctl, "logs", "get", "journal/xcc.service", *args, env={**os.environ, "TZ": "Asia/Tokyo"}
            )
            assert rc == 2, (args, err)
            assert flag in err
            assert "Traceback" not in err


async def test_log_names_cannot_retitle_the_terminal_or_forge_a_line(tmp_path, bus_address):
    async with paired_bridge(tmp_path, bus_address) as (bridge, ctl):
        logdir = bridge.root / "var/log/xcc"
        logdir.mkdir(parents=True, exist_ok=True)
        (logdir / "ok.log").write_text("x\n")
        (logdir / "esc\x1b]0;PWNED\x07.log").write_text("x\n")
        (logdir / "fake.log\t999 bytes\nx").write_text("x\n")
        os.close(os.open(os.fsencode(logdir) + b"/bad\xff.log", os.O_CREAT | os.O_WRONLY, 0o644))
        rc, out, err = await run_satctl(ctl, "logs", "list")
        assert rc == 0, err
        assert "xcc/ok.log" in out
        assert "\x1b" not in out
        assert "999 bytes" not in out


async def test_dash_is_standard_output_and_a_fifo_waits_for_its_reader(tmp_path, bus_address):
    """Issue 20: `-o -` writes to standard output (logs get, logs bundle), never a file named
    `-`; `-o FIFO` is written once a reader opens it, and without one it is one line and exit 9
    after --timeout, never a hang."""
    async with paired_bridge(tmp_path, bus_address) as (bridge, ctl):
        log = bridge.root / "var/log/xcc/app.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        data = b"line\n" * 20000
        log.write_bytes(data)
        work = tmp_path / "cwd"
        work.mkdir()
        for args in (["logs", "get", "xcc/app.log", "-o", "-"], ["logs", "bundle", "-o", "-"]):
            proc = await asyncio.create_subprocess_exec(
                PY, "-m", "satbridge.client", *ctl, *args, stdout=PIPE, stderr=PIPE, cwd=work
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err
            assert out == data if args[1] == "get" else out[:2] == b"\x1f\x8b", out[:100]  # gzip's magic
            assert list(work.iterdir()) == []  # no file named -

        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        started = time.monotonic()
        rc, out, err = await run_satctl(ctl, "logs", "get", "xcc/app.log", "-o", str(fifo), "--timeout", "0.5")
        assert rc == 9, err
        assert str(fifo) in err
        assert "--output" in err
        assert len(err.strip().splitlines()) == 1, err
        assert time.monotonic() - started < 30

        proc = await asyncio.create_subprocess_exec(
            PY, "-m", "satbridge.client", *ctl, "logs", "get", "xcc/app.log", "-o", str(fifo), stderr=PIPE
        )
        await asyncio.sleep(0.3)  # the reader comes after the writer, as with `satctl ... -o p & cat p`

        def read_all() -> bytes:
            with open(fifo, "rb") as reader:
                return reader.read()

        got = await asyncio.wait_for(asyncio.to_thread(read_all), 60)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err
        assert got == data


async def test_an_output_file_is_left_alone_until_the_satellite_sends(tmp_path, bus_address):
    """Red team (issue 20): `satctl logs get TYPO -o FILE` truncated FILE, then failed NOT_FOUND;
    `logs bundle -o FILE` truncated it when the call failed (UNAUTHENTICATED, unreachable). A
    command that fails leaves an existing file as it was."""
    from tests.lab.bridge import satctl

    async with paired_bridge(tmp_path, bus_address) as (bridge, ctl):
        config = tmp_path / "ctl"
        kept = tmp_path / "kept.txt"
        kept.write_bytes(b"precious\n")
        rc, _, err = await satctl(config, "logs", "get", "no-such.log", "-o", str(kept))
        assert rc == 6, err
        rc, _, err = await satctl(config, "logs", "get", "satbridge/audit.log", "--lines", "3", "-o", str(kept))
        assert rc == 2, err  # lines on a file: refused by the satellite
        assert kept.read_bytes() == b"precious\n"
        empty = bridge.root / "var/log/xcc/empty.log"
        empty.parent.mkdir(parents=True, exist_ok=True)
        empty.write_bytes(b"")
        rc, _, err = await satctl(config, "logs", "get", "xcc/empty.log", "-o", str(tmp_path / "empty.out"))
        assert rc == 0, err
        assert (tmp_path / "empty.out").read_bytes() == b""  # an empty log is still a file
        proc = await asyncio.create_subprocess_exec(
            PY, "-m", "satbridge", "--root", str(bridge.root), "--sandbox", "disconnect",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        assert await proc.wait() == 0
        rc, _, err = await satctl(config, "logs", "bundle", "-o", str(kept))
        assert rc == 5, err
        assert kept.read_bytes() == b"precious\n"
        del ctl


async def test_following_into_a_pipe_whose_reader_left_ends_at_once(tmp_path, bus_address):
    """Red team (issue 20): `satctl logs get NAME -f | head -c1` on a quiet log hung until the
    next line was written there (hours, perhaps); now it ends as `tail -f` does, exit 141."""
    async with paired_bridge(tmp_path, bus_address) as (bridge, ctl):
        read_end, write_end = os.pipe()
        proc = await asyncio.create_subprocess_exec(
            PY, "-m", "satbridge.client", *ctl, "logs", "get", "satbridge/audit.log", "-f",
            stdout=write_end, stderr=PIPE,
        )  # fmt: skip
        os.close(write_end)
        try:
            first = await asyncio.to_thread(os.read, read_end, 1)
            assert first
        finally:
            os.close(read_end)  # the reader goes away, as `head -c1` does
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 15)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 141, err
        assert err == b"", err
        del bridge


async def test_a_full_output_file_is_named(tmp_path, bus_address):
    """Red team (issue 20): `satctl logs get|bundle -o /dev/full` said only `No space left on
    device` (exit 7): which file, when a script names several, was left to guess."""
    from tests.lab.bridge import satctl

    async with paired_bridge(tmp_path, bus_address) as (bridge, ctl):
        for command in (["logs", "get", "satbridge/audit.log"], ["logs", "bundle"]):
            rc, _, err = await satctl(tmp_path / "ctl", *command, "-o", "/dev/full")
            assert rc == 7, err
            assert err == "satctl: error: /dev/full: No space left on device\n", err
        del bridge, ctl
