"""build-rootfs.sh is safe to kill: a build killed with SIGKILL (no trap runs), with mounts left in
its tree as a killed mmdebstrap leaves them, is removed by the next build, which then succeeds.

mmdebstrap is stood in for by a script on PATH (the real one takes a minute and the network; the
real cold build runs in build/setup-labs.sh before every CI run). Needs root to mount.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
SCRIPT = Path(__file__).resolve().parents[2] / "build" / "appliance" / "build-rootfs.sh"

# $TARGET is the second-to-last argument (the suite name comes before it, the mirror after).
FAKE_MMDEBSTRAP = """#!/bin/bash
target=${@: -2:1}
mkdir -p "$target/proc" "$target/etc"
if [ "$FAKE_MODE" = hang ]; then
    mount -t tmpfs lab-fake-proc "$target/proc"
    touch "$target/proc/inside-a-mount"
    echo > "$FAKE_READY"
    sleep 600
fi
echo satellite > "$target/etc/hostname"
"""


def mounts_under(path: Path) -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines if line.split()[4].startswith(str(path))]


def build(cache: Path, env: dict[str, str], **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(SCRIPT), str(cache)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def test_a_build_killed_by_sigkill_is_cleaned_up_by_the_next(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting inside the partial tree needs root")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mmdebstrap").write_text(FAKE_MMDEBSTRAP)
    (fake / "mmdebstrap").chmod(0o755)
    cache = tmp_path / "cache"
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "FAKE_READY": str(tmp_path / "ready")}
    killed = build(cache, {**env, "FAKE_MODE": "hang"}, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "ready").exists():
            assert killed.poll() is None, killed.communicate()
            assert time.monotonic() < deadline, "the stand-in mmdebstrap never started"
            time.sleep(0.05)
        partial = [p for p in cache.iterdir() if ".tmp." in p.name]
        assert len(partial) == 1
        assert mounts_under(partial[0]), "the stand-in left a mount in its tree"
        os.killpg(killed.pid, signal.SIGKILL)  # the whole group, as a CI timeout kills it: no trap runs
        killed.wait()
        assert partial[0].exists(), "SIGKILL ran no clean-up: the partial tree is still there"

        done = build(cache, env)
        out, err = done.communicate(timeout=60)
        assert done.returncode == 0, err
        rootfs = Path(out.strip().splitlines()[-1])
        assert (rootfs / ".complete").exists()
        assert (rootfs / "etc/hostname").read_text() == "satellite\n"
        assert "removing the partial build" in err
        assert sorted(p.name for p in cache.iterdir()) == sorted([".lock", rootfs.name]), "a partial tree is left"
        assert not mounts_under(cache), "the killed build's mounts are left"
        again = build(cache, env)
        assert again.communicate(timeout=30)[0].strip() == str(rootfs), "cached: a second run builds nothing"
    finally:
        if killed.poll() is None:
            os.killpg(killed.pid, signal.SIGKILL)
            killed.wait()
        for target in sorted(mounts_under(tmp_path), reverse=True):
            subprocess.run(["umount", "-l", target], check=False)
