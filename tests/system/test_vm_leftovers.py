"""The VM lab survives being killed: a VM whose test run died before its `finally` (pytest-timeout
ends a run with os._exit) is stopped by the next run, by PID. QEMU is stood in for by `sleep`."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.lab.vm import remove_leftovers


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_vm_left_by_a_killed_run_is_stopped_at_the_next_start():
    if subprocess.run(["tmux", "-V"], capture_output=True).returncode:
        pytest.fail("tmux is needed (apt-get install tmux)")
    name, live = f"satvm-{dead_pid()}", f"satvm-{os.getpid()}"  # this run is alive: its VM stays
    for server in (name, live):
        subprocess.run(["tmux", "-L", server, "new-session", "-d", "-s", "vm", "sleep 600; sleep 3600"], check=True)
    try:
        shell = subprocess.run(
            ["tmux", "-L", name, "display-message", "-p", "-t", "vm", "#{pane_pid}"], capture_output=True, text=True
        ).stdout.strip()
        deadline = time.monotonic() + 5
        while not Path(f"/proc/{shell}/task/{shell}/children").read_text().split():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sleeper = int(Path(f"/proc/{shell}/task/{shell}/children").read_text().split()[0])
        assert sleeper in remove_leftovers()
        assert not Path(f"/proc/{sleeper}").exists() or "Z" in Path(f"/proc/{sleeper}/stat").read_text().split()[2]
        assert subprocess.run(["tmux", "-L", name, "has-session"], capture_output=True).returncode != 0
        assert subprocess.run(["tmux", "-L", live, "has-session"], capture_output=True).returncode == 0
    finally:
        for server in (name, live):
            subprocess.run(["tmux", "-L", server, "kill-server"], capture_output=True)
