"""build-rootfs.sh is safe to kill and safe to share.

- A build killed with SIGKILL (no trap runs), with mounts left in its tree as a killed mmdebstrap
  leaves them, is removed by the next build, which then succeeds; whatever the cache path looks
  like (a space, a trailing slash, a symlink, relative).
- A rootfs built from other inputs (another checkout's) is never removed while a lab uses it.

mmdebstrap is stood in for by a script on PATH (the real one takes a minute and the network; the
real cold build runs in build/setup-labs.sh before every CI run). Needs root to mount.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.lab.lock import in_use

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
    real = str(path.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4].encode().decode("unicode_escape")  # mountinfo's octal escapes
        if target == real or target.startswith(real + "/"):
            found.append(target)
    return found


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    if os.geteuid() != 0:
        pytest.skip("mounting inside the partial tree needs root")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mmdebstrap").write_text(FAKE_MMDEBSTRAP)
    (fake / "mmdebstrap").chmod(0o755)
    return {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "FAKE_READY": str(tmp_path / "ready")}


def build(
    cache: str, env: dict[str, str], script: Path = SCRIPT, cwd: Path | None = None, **kwargs
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(script), cache], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, **kwargs
    )


@pytest.mark.parametrize("shape", ["plain", "with space", "trailing-slash", "through-symlink", "relative"])
def test_a_build_killed_by_sigkill_is_cleaned_up_by_the_next(tmp_path, env, shape):
    real = tmp_path / ("ca che" if shape == "with space" else "cache")
    cache = str(real)
    if shape == "trailing-slash":
        cache += "/"
    elif shape == "through-symlink":
        (tmp_path / "link").symlink_to(tmp_path)
        cache = str(tmp_path / "link" / real.name)
    elif shape == "relative":
        cache = real.name
    killed = build(cache, {**env, "FAKE_MODE": "hang"}, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "ready").exists():
            assert killed.poll() is None, killed.communicate()
            assert time.monotonic() < deadline, "the stand-in mmdebstrap never started"
            time.sleep(0.05)
        partial = [p for p in real.iterdir() if ".tmp." in p.name]
        assert len(partial) == 1
        assert mounts_under(partial[0]), "the stand-in left a mount in its tree"
        os.killpg(killed.pid, signal.SIGKILL)  # the whole group, as a CI timeout kills it: no trap runs
        killed.wait()
        assert partial[0].exists(), "SIGKILL ran no clean-up: the partial tree is still there"

        done = build(cache, env, cwd=tmp_path)
        out, err = done.communicate(timeout=60)
        assert done.returncode == 0, err
        rootfs = Path(out.strip().splitlines()[-1])
        assert rootfs.parent == real.resolve(), "the path printed is the canonical one"
        assert (rootfs / ".complete").exists()
        assert (rootfs / "etc/hostname").read_text() == "satellite\n"
        assert "removing the partial build" in err
        assert sorted(p.name for p in real.iterdir()) == sorted([".lock", rootfs.name]), "a partial tree is left"
        assert not mounts_under(real), "the killed build's mounts are left"
        again = build(cache, env, cwd=tmp_path)
        assert again.communicate(timeout=30)[0].strip() == str(rootfs), "cached: a second run builds nothing"
    finally:
        if killed.poll() is None:
            os.killpg(killed.pid, signal.SIGKILL)
            killed.wait()
        for target in sorted(mounts_under(tmp_path), reverse=True):
            subprocess.run(["umount", "-l", target], check=False)


def variant(tmp_path: Path, suite: str) -> Path:
    """The script as another checkout would have it: other build inputs, so another rootfs."""
    copy = tmp_path / f"build-rootfs-{suite}.sh"
    text = SCRIPT.read_text()
    assert "\nSUITE=bookworm\n" in text
    copy.write_text(text.replace("\nSUITE=bookworm\n", f"\nSUITE={suite}\n"))
    copy.chmod(0o755)
    return copy


def test_a_rootfs_in_use_by_another_checkout_is_never_removed(tmp_path, env):
    cache = tmp_path / "cache"

    def built(suite: str) -> Path:
        done = build(str(cache), env, script=variant(tmp_path, suite))
        out, err = done.communicate(timeout=60)
        assert done.returncode == 0, err
        time.sleep(0.05)  # distinct mtimes: "the newest other one" is well defined
        return Path(out.strip().splitlines()[-1])

    first = built("one")
    with in_use(first):  # a lab of another checkout boots it
        second = built("two")
        third = built("three")
        assert first.exists(), "removed while a lab was using it"
        assert second.exists(), "the newest other rootfs is kept"
    fourth = built("four")
    assert not first.exists(), "unused and not the newest other: dead weight, removed"
    assert not second.exists()
    assert third.exists()
    assert fourth.exists()
    shutil.rmtree(cache)
