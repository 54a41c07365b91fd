"""One holder per lab name on this machine, across test runs.

Lab names (netns `sbs-TAG`, container `satlab`) are fixed, so that a run can delete what a killed
run left under the same name. Two runs at once (a developer's and a helper's, two worktrees) would
then delete each other's namespaces; instead they take turns, holding an flock(2) on
/run/lock/satbridge-lab-NAME.lock for as long as the lab lives. The kernel drops the lock with its
holder, however it ends, so a killed run never blocks the next.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCKS = Path(os.environ.get("SATBRIDGE_LAB_LOCKS", "/run/lock"))


@contextmanager
def exclusive(name: str) -> Iterator[None]:
    """Hold the lab NAME's lock (blocking until another run releases it) for the `with` block."""
    LOCKS.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCKS / f"satbridge-lab-{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def in_use(rootfs: Path) -> Iterator[None]:
    """A shared flock on ROOTFS.use while the `with` block boots it: build-rootfs.sh removes a
    rootfs built from other inputs only when nobody holds this (another checkout may boot it)."""
    fd = os.open(f"{rootfs}.use", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)
