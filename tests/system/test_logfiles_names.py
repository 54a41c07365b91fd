"""Every name LogFiles.list() yields is one core.logs.check_name accepts (red team of the rule
that refuses empty and `.` components): rotated files, files in subdirectories, dots, unicode,
spaces and glob characters, and paths longer than PATH_MAX."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satbridge.core.logs import check_name
from satbridge.system.logfiles import LogFiles

_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0")
_COMPONENT = st.one_of(
    st.sampled_from([".hidden", "...", "..x", "app.log.1", "app.log.2.gz", " ", "*", "[a]", "é", "日志", "-"]),
    st.text(_CHARS, min_size=1, max_size=40).filter(lambda s: s not in (".", "..")),
)
_PATHS = st.lists(st.lists(_COMPONENT, min_size=1, max_size=4), min_size=1, max_size=6)


def _make(root: Path, parts: list[str]) -> None:
    path = root.joinpath(*parts)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    except OSError:  # a component that is a file elsewhere in the example, or too long in bytes
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_PATHS)
def test_every_listed_name_is_accepted(paths: list[list[str]]) -> None:
    top = Path(tempfile.mkdtemp(prefix="logs-names-"))
    try:
        root = top / "xcc"
        root.mkdir()
        for parts in paths:
            _make(root, parts)
        for source in LogFiles({"xcc": root}).list():
            assert check_name(source.name) == source.name
    finally:
        shutil.rmtree(top)


def test_a_file_deeper_than_path_max_is_not_listed_or_is_accepted(tmp_path: Path) -> None:
    """A name `logs list` shows must be one `logs get` takes: a path over MAX_NAME bytes."""
    root = tmp_path / "xcc"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(20):  # 20 x 250 bytes: past PATH_MAX, made relative to each directory
            os.mkdir("d" * 250, dir_fd=fd)
            new = os.open("d" * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = new
        os.close(os.open("deep.log", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    for source in LogFiles({"xcc": root}).list():
        assert check_name(source.name) == source.name
