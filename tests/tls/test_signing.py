"""The trusted-keys directory: every file that is not a usable key is named, none can block."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pytest

from satbridge.tls.signing import KEY_LIMIT, TrustedKeys, load_trusted, new_signing_key


def _load_within(directory: Path, seconds: float = 5.0) -> TrustedKeys:
    """load_trusted in a thread of its own, so a blocking open() fails the test, not hangs it."""
    result: list[TrustedKeys] = []
    thread = threading.Thread(target=lambda: result.append(load_trusted(directory)), daemon=True)
    thread.start()
    thread.join(seconds)
    return result[0] if result else pytest.fail(f"load_trusted({directory}) blocked for {seconds} s")


def _unblock(fifo: Path) -> None:
    """A reader stuck in open() on `fifo` (the bug) is released by opening its other end."""
    with contextlib.suppress(OSError):  # ENXIO: nobody was waiting
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.parametrize("kind", ["fifo", "symlink-to-fifo", "dev-zero", "directory", "huge", "dangling"])
def test_a_key_file_that_is_no_key_is_named_and_never_blocks(tmp_path, kind):
    """Red team, issue 14: a FIFO named *.pub made every install hang in open()."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "good.pub").write_bytes(new_signing_key()[1])
    evil = keys / "evil.pub"
    fifo = tmp_path / "fifo"
    if kind == "fifo":
        os.mkfifo(evil)
        fifo = evil
    elif kind == "symlink-to-fifo":
        os.mkfifo(fifo)
        evil.symlink_to(fifo)
    elif kind == "dev-zero":
        evil.symlink_to("/dev/zero")
    elif kind == "directory":
        evil.mkdir()
    elif kind == "huge":
        with open(evil, "wb") as f:
            f.truncate(1 << 30)
    else:
        evil.symlink_to(tmp_path / "missing")
    try:
        trusted = _load_within(keys)
    finally:
        if fifo.exists():
            _unblock(fifo)
    assert len(trusted.keys) == 1
    (problem,) = trusted.problems
    assert problem.startswith(f"{evil}: ")
    if kind in ("fifo", "symlink-to-fifo", "dev-zero"):
        assert "not a regular file" in problem
    if kind == "huge":
        assert str(KEY_LIMIT) in problem


def test_a_symlink_to_a_key_file_still_counts(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    (tmp_path / "vendor.pub").write_bytes(new_signing_key()[1])
    (keys / "vendor.pub").symlink_to(tmp_path / "vendor.pub")
    trusted = _load_within(keys)
    assert (len(trusted.keys), trusted.problems) == (1, [])
