"""Red team 21: `make bench` leaves nothing running and no work directory behind, even killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEAF = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"


def test_a_killed_runs_directory_and_processes_go_at_the_next_start_and_only_those(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import upload
    finally:
        sys.path.remove(str(ROOT / "bench"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{upload.WORK_PREFIX}killed"
    stale.mkdir()
    (stale / "owner").write_text(f"{dead.pid} 1\n")
    (stale / "payload.bin").write_bytes(b"x" * 4096)
    left = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(stale / "host")])
    deaf = subprocess.Popen(  # one that ignores SIGTERM is killed after the grace period
        [sys.executable, "-c", DEAF, f"AuthorizedKeysFile={stale}/authorized"], stdout=subprocess.PIPE, text=True
    )
    assert deaf.stdout is not None
    assert deaf.stdout.readline().strip() == "ready"
    alive = tmp_path / f"{upload.WORK_PREFIX}running"
    alive.mkdir()
    (alive / "owner").write_text(f"{os.getpid()} {upload._started(os.getpid())}\n")
    unowned = tmp_path / f"{upload.WORK_PREFIX}unowned"
    unowned.mkdir()
    try:
        work = upload.claim_work(tmp_path)
        assert left.wait(timeout=10) < 0, "a process of the killed run is stopped by its PID"
        assert deaf.wait(timeout=10) == -signal.SIGKILL
        assert not stale.exists()
        assert alive.is_dir(), "a running bench's directory stays"
        assert unowned.is_dir(), "a directory without an owner file is not ours to judge"
        assert (work / "owner").read_text().split() == [str(os.getpid()), upload._started(os.getpid())]
    finally:
        for proc in (left, deaf):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="the scp reference's sshd runs only as root")
def test_the_private_sshd_dies_with_a_bench_killed_by_sigkill(tmp_path):
    """bench/upload.py's sshd (root login by key on loopback), its sink and its bridge used to
    outlive a `kill -9` of the bench; they get SIGTERM from the kernel now (PDEATHSIG)."""
    script = (
        "import sys, time; from pathlib import Path; sys.path.insert(0, 'bench'); import upload\n"
        "ssh = upload.scp_setup(Path(sys.argv[1]))\n"
        "print(ssh[0].pid if ssh else 'none', flush=True); time.sleep(60)\n"
    )
    bench = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert bench.stdout is not None
    pid = bench.stdout.readline().strip()
    if pid == "none":
        bench.kill()
        bench.wait()
        pytest.skip("no sshd installed (build/setup-labs.sh installs openssh-server)")
    bench.kill()
    bench.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    gone = not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    if not gone:
        os.kill(int(pid), signal.SIGTERM)
    assert gone, "the private sshd outlived the bench"
