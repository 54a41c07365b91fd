"""XCC releases on disk: /opt/xcc/releases/<version>, and the `current` / `previous` links.

Switching is atomic: a new link under a temporary name, then rename() over `current`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from satbridge.system.files import fsync_dir


class Releases:
    def __init__(self, xcc_dir: Path) -> None:
        self.xcc_dir = xcc_dir
        self.releases = xcc_dir / "releases"

    def _link(self, name: str) -> str:
        try:
            return (self.xcc_dir / name).readlink().name
        except OSError:
            return ""

    def current(self) -> str:
        return self._link("current")

    def previous(self) -> str:
        return self._link("previous")

    def has(self, version: str) -> bool:
        return (self.releases / version).is_dir()

    def staging_dir(self, version: str) -> Path:
        return self.releases / f"{version}.tmp"

    def clear_staging(self) -> None:
        if self.releases.is_dir():
            for tmp in self.releases.glob("*.tmp"):
                shutil.rmtree(tmp, ignore_errors=True)

    def promote(self, version: str) -> None:
        """releases/<version>.tmp -> releases/<version> (replacing a leftover of that version)."""
        final = self.releases / version
        if final.exists():
            shutil.rmtree(final)
        os.rename(self.staging_dir(version), final)
        fsync_dir(self.releases)

    def point(self, name: str, version: str | None) -> None:
        """Atomically point `current` or `previous` at releases/<version> (None: remove it)."""
        link = self.xcc_dir / name
        if version is None:
            link.unlink(missing_ok=True)
        else:
            tmp = self.xcc_dir / f".{name}.new"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(f"releases/{version}")
            os.rename(tmp, link)
        fsync_dir(self.xcc_dir)

    def prune(self, keep: set[str]) -> list[str]:
        removed = []
        if self.releases.is_dir():
            for path in self.releases.iterdir():
                if path.is_dir() and not path.name.endswith(".tmp") and path.name not in keep:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path.name)
        return removed
