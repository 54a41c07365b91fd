"""The log files adapter on real files: the one checked open, and `tail -F` semantics."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from satbridge.errors import Aborted, NotFound, PermissionDenied
from satbridge.system.logfiles import LogFiles


@pytest.fixture
def logs(tmp_path: Path) -> tuple[LogFiles, Path]:
    root = tmp_path / "xcc"
    root.mkdir()
    (tmp_path / "outside.log").write_text("SECRET outside the log directory\n")
    return LogFiles({"xcc": root}), root


class Follow:
    """A follower running in the background, collecting what it yields (or how it ended)."""

    def __init__(self, files: LogFiles, name: str, offset: int = 0) -> None:
        self.received = bytearray()
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run(files, name, offset))

    async def _run(self, files: LogFiles, name: str, offset: int) -> None:
        try:
            async for data in files.follow("xcc", name, offset):
                self.received.extend(data)
        except Exception as exc:  # the test inspects how it ended
            self.error = exc

    async def until(self, text: bytes, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.received:
            assert self.error is None, f"the follow ended: {self.error!r}"
            assert time.monotonic() < deadline, f"{text!r} never arrived; got {bytes(self.received)[-300:]!r}"
            await asyncio.sleep(0.01)

    async def ended(self, timeout: float = 5) -> BaseException:
        await asyncio.wait_for(asyncio.shield(self.task), timeout)
        assert self.error is not None
        return self.error

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda root, out: os.mkfifo(root / "x.log"), PermissionDenied),
        (lambda root, out: (root / "x.log").mkdir(), PermissionDenied),
        (lambda root, out: (root / "x.log").symlink_to(out), PermissionDenied),
        (lambda root, out: (root / "x.log").symlink_to("../outside.log"), PermissionDenied),
        (lambda root, out: (root / "x.log").symlink_to("missing"), NotFound),
        (lambda root, out: os.mknod(root / "x.log", 0o600 | 0o020000, os.makedev(1, 3)), PermissionDenied),
    ],
    ids=["fifo", "directory", "absolute-link-out", "relative-link-out", "dangling-link", "char-device"],
)
async def test_the_checked_open_refuses_what_is_not_a_log_and_never_blocks(logs, tmp_path, make, error):
    files, root = logs
    make(root, tmp_path / "outside.log")
    with pytest.raises(error):
        await asyncio.wait_for(files.open("xcc", "x.log"), 5)  # a FIFO's open must not wait for a writer
    assert "xcc/x.log" not in {s.name for s in files.list()}


async def test_a_link_inside_the_directory_is_read(logs):
    files, root = logs
    (root / "app-1.log").write_text("one\n")
    (root / "current.log").symlink_to("app-1.log")
    log = await files.open("xcc", "current.log")
    try:
        assert b"".join([d async for d in log.chunks(0)]) == b"one\n"
    finally:
        log.close()


async def test_a_download_says_when_the_file_is_truncated_under_it(logs):
    files, root = logs
    path = root / "big.log"
    path.write_bytes(b"x" * (3 << 20))
    log = await files.open("xcc", "big.log")
    chunks = log.chunks(0)
    try:
        assert len(await anext(chunks)) == 1 << 20
        os.truncate(path, 0)
        with pytest.raises(Aborted, match="truncated while it was sent"):
            await anext(chunks)
    finally:
        await chunks.aclose()
        log.close()


async def test_a_download_says_when_the_file_is_rewritten_under_it(logs):
    files, root = logs
    path = root / "big.log"
    path.write_bytes(b"a" * (3 << 20))
    log = await files.open("xcc", "big.log")
    chunks = log.chunks(0)
    try:
        await anext(chunks)
        await asyncio.sleep(0.2)  # the next chunk is read ahead meanwhile, before the rewrite
        path.write_bytes(b"b" * (3 << 20))  # copytruncate, then as much written again
        with pytest.raises(Aborted, match="rewritten while it was sent"):
            async for _ in chunks:  # the chunk read ahead is the old one; the one after sees it
                pass
    finally:
        await chunks.aclose()
        log.close()


async def test_follow_rename_and_create(logs):
    files, root = logs
    path = root / "app.log"
    path.write_text("a1\n")
    follow = Follow(files, "app.log")
    try:
        await follow.until(b"a1\n")
        path.rename(root / "app.log.1")
        append(root / "app.log.1", "a2 late to the old file\n")
        path.write_text("b1 in the new file\n")
        await follow.until(b"b1 in the new file\n")
        assert bytes(follow.received) == b"a1\na2 late to the old file\nb1 in the new file\n"
    finally:
        await follow.stop()


async def test_follow_copytruncate_with_writes_past_the_position(logs):
    """The file is truncated and written past the follower's position before it looks again: the
    bytes before its position changed, so it starts the file over instead of skipping its start."""
    files, root = logs
    path = root / "app.log"
    path.write_text("old 1\n")
    follow = Follow(files, "app.log")
    try:
        await follow.until(b"old 1\n")
        with open(path, "r+") as f:  # as one step, faster than any wake-up
            f.truncate(0)
            f.write("new 1 is longer than the old line\nnew 2\n")
        await follow.until(b"new 2\n")
        assert bytes(follow.received) == b"old 1\nnew 1 is longer than the old line\nnew 2\n"
    finally:
        await follow.stop()


async def test_follow_a_symlink_that_is_re_pointed(logs):
    files, root = logs
    (root / "app-1.log").write_text("one\n")
    (root / "app-2.log").write_text("")
    (root / "current.log").symlink_to("app-1.log")
    follow = Follow(files, "current.log")
    try:
        await follow.until(b"one\n")
        (root / "next").symlink_to("app-2.log")
        (root / "next").rename(root / "current.log")  # ln -sfn
        append(root / "app-2.log", "two\n")
        await follow.until(b"two\n")
        append(root / "app-1.log", "one, no longer the current log\n")
        append(root / "app-2.log", "three\n")
        await follow.until(b"three\n")
        assert b"no longer" not in follow.received
    finally:
        await follow.stop()


async def test_follow_waits_for_a_deleted_name_to_come_back(logs):
    files, root = logs
    path = root / "app.log"
    path.write_text("one\n")
    follow = Follow(files, "app.log")
    try:
        await follow.until(b"one\n")
        path.unlink()
        await asyncio.sleep(0.3)
        path.write_text("two, in a new file\n")
        await follow.until(b"two, in a new file\n")
    finally:
        await follow.stop()


@pytest.mark.parametrize("replacement", ["fifo", "link-out", "directory"])
async def test_follow_never_reads_what_replaces_the_log_and_never_blocks(logs, tmp_path, replacement):
    """Rotated, then something that is not a log under the name: the follow ends with
    PermissionDenied, streams nothing of it, and the event loop keeps running meanwhile."""
    files, root = logs
    path = root / "swap.log"
    path.write_text("mine\n")
    follow = Follow(files, "swap.log")
    try:
        await follow.until(b"mine\n")
        path.rename(root / "swap.log.1")
        if replacement == "fifo":
            os.mkfifo(path)
        elif replacement == "link-out":
            path.symlink_to(tmp_path / "outside.log")
        else:
            path.mkdir()
        ticks = 0
        while not follow.task.done() and ticks < 300:
            await asyncio.sleep(0.01)  # would stall if anything blocked the loop
            ticks += 1
        error = await follow.ended()
        assert isinstance(error, PermissionDenied), error
        assert b"SECRET" not in follow.received
    finally:
        await follow.stop()


async def test_follow_a_line_without_newline_and_a_10_mib_line(logs):
    files, root = logs
    path = root / "app.log"
    path.write_text("")
    follow = Follow(files, "app.log")
    try:
        append(path, "no newline yet")
        await follow.until(b"no newline yet")
        append(path, " - now\n" + "y" * (10 << 20) + "\n" + "after\n")
        await follow.until(b"after\n", timeout=20)
        assert len(follow.received) == len("no newline yet - now\n") + (10 << 20) + 1 + len("after\n")
    finally:
        await follow.stop()


async def test_follow_releases_its_descriptors(logs):
    files, root = logs
    (root / "app.log").write_text("x\n")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        follow = Follow(files, "app.log")
        await follow.until(b"x\n")
        await follow.stop()
    assert len(os.listdir("/proc/self/fd")) <= before


def test_hostile_names_are_left_out_of_the_list_and_never_break_it(logs):
    files, root = logs
    (root / "good.log").write_text("ok\n")
    os.close(os.open(os.fsencode(root) + b"/bad\xff.log", os.O_CREAT | os.O_WRONLY, 0o644))  # not UTF-8
    (root / "esc\x1b]0;PWNED\x07.log").write_text("x\n")
    (root / "fake.log\t999 bytes\nx").write_text("x\n")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    assert [s.name for s in files.list()] == ["xcc/good.log"]


async def test_a_loop_of_links_is_refused_not_an_error(logs):
    files, root = logs
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    with pytest.raises(PermissionDenied, match="loop"):
        await files.open("xcc", "loop1")


async def test_a_hard_link_is_refused(logs, tmp_path):
    """A hard link in the log directory may be another name of a secret (the identity key)."""
    files, root = logs
    secret = tmp_path / "identity.key"
    secret.write_text("PRIVATE\n")
    os.link(secret, root / "innocent.log")
    with pytest.raises(PermissionDenied, match="hard link"):
        await files.open("xcc", "innocent.log")
    assert "xcc/innocent.log" not in {s.name for s in files.list()}


async def test_the_log_directory_swapped_for_a_link_is_refused(tmp_path):
    root = tmp_path / "xcc"
    root.mkdir()
    (root / "f.log").write_text("mine\n")
    files = LogFiles({"xcc": root})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.log").write_text("OUTSIDE-SECRET\n")
    root.rename(tmp_path / "xcc.real")
    root.symlink_to(outside)
    with pytest.raises(PermissionDenied):
        await files.open("xcc", "f.log")
    assert files.list() == []


async def test_follow_waits_when_the_log_directory_is_renamed_and_made_again(tmp_path):
    root = tmp_path / "xcc"
    root.mkdir()
    (root / "f.log").write_text("a\n")
    files = LogFiles({"xcc": root})
    follow = Follow(files, "f.log")
    try:
        await follow.until(b"a\n")
        root.rename(tmp_path / "xcc.old")
        await asyncio.sleep(0.3)
        root.mkdir()
        (root / "f.log").write_text("b\n")
        await follow.until(b"b\n")
    finally:
        await follow.stop()


async def test_a_follow_that_ends_first_reads_the_old_file_to_its_end(logs):
    files, root = logs
    path = root / "swap.log"
    path.write_text("one\n")
    follow = Follow(files, "swap.log")
    try:
        await follow.until(b"one\n")
        follow_task_wake = follow.task
        path.rename(root / "swap.log.1")
        with open(root / "swap.log.1", "a") as f:  # written after the rotation, before the swap is seen
            f.write("two, late\n")
        os.mkfifo(path)
        error = await follow.ended()
        assert isinstance(error, PermissionDenied)
        assert follow_task_wake.done()
        assert bytes(follow.received) == b"one\ntwo, late\n"
    finally:
        await follow.stop()


def test_a_255_byte_component_is_listed_and_readable(logs):
    files, root = logs
    (root / ("n" * 251 + ".log")).write_text("long\n")
    names = [s.name for s in files.list()]
    assert names == ["xcc/" + "n" * 251 + ".log"]
    from satbridge.core.logs import check_name

    assert check_name(names[0]) == names[0]


async def test_inotify_is_used_by_a_bounded_number_of_followers(logs):
    from satbridge.system import logfiles

    files, root = logs
    (root / "app.log").write_text("x\n")
    followers = [Follow(files, "app.log") for _ in range(logfiles.INOTIFY_BUDGET + 4)]
    try:
        for follow in followers:
            await follow.until(b"x\n")
        assert logfiles._inotify_users == logfiles.INOTIFY_BUDGET
        with open(root / "app.log", "a") as f:
            f.write("y\n")
        for follow in followers:  # the ones beyond the budget poll, and still follow
            await follow.until(b"y\n")
    finally:
        for follow in followers:
            await follow.stop()
    assert logfiles._inotify_users == 0
