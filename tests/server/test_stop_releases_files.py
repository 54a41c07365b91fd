"""A bridge that stopped holds no file under its root: the event feeds' audit tail kept the audit
log open after the stop (found as a tmpfs that could not be unmounted after the disk-full test)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import loopback_config, serve_bridge


def held_under(root: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(root)):
            found.append(target)
    return found


async def test_a_stopped_bridge_holds_no_file_under_its_root(tmp_path):
    root = tmp_path / "root"
    config = loopback_config(root)
    config.paths.audit_log.parent.mkdir(parents=True, exist_ok=True)
    config.paths.audit_log.write_text("")  # an audit log exists, as on any used satellite
    async with serve_bridge(config):
        assert held_under(root)  # the audit tail holds the log while it serves
    assert held_under(root) == []
