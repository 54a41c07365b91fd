"""XCC releases on disk: /opt/xcc/releases/<version>, the `current` / `previous` links, and
/opt/xcc/staging/<version> where an install extracts before it renames into releases/.

Staging is a directory of its own: no version can name it, so clearing it never touches a
release (a release may well be called 2.0.0-rc.tmp). Switching is atomic: a new link under a
temporary name, then rename() over `current`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from satbridge.errors import InvalidArgument
from satbridge.system.files import fsync_dir


def _plain(version: str) -> str:
    """A version as a directory name. New versions passed core.package.check_version; a release
    an older bridge installed under a looser grammar must still be found, so only what could
    name another directory is refused here."""
    if not version or "/" in version or "\0" in version or version in (".", ".."):
        raise InvalidArgument(f"{version!r} cannot name a release directory", field="version")
    return version


class Releases:
    def __init__(self, xcc_dir: Path) -> None:
        self.xcc_dir = xcc_dir
        self.releases = xcc_dir / "releases"
        self.staging = xcc_dir / "staging"

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
        return (self.releases / _plain(version)).is_dir()

    def staging_dir(self, version: str) -> Path:
        """Where `version` is extracted: a fresh directory under staging/ (created on demand)."""
        self.staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.staging / _plain(version)

    def clear_staging(self) -> None:
        """Remove every half extraction. Only staging/ is touched, never releases/."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def promote(self, version: str) -> None:
        """staging/<version> -> releases/<version> (replacing a leftover of that version)."""
        final = self.releases / _plain(version)
        self.releases.mkdir(parents=True, exist_ok=True)
        if final.is_symlink() or final.is_file():
            final.unlink()
        elif final.exists():
            shutil.rmtree(final)
        os.rename(self.staging_dir(version), final)
        fsync_dir(self.releases)
        self.staging.rmdir()  # staging/ exists only while an install extracts
        fsync_dir(self.xcc_dir)

    def point(self, name: str, version: str | None) -> None:
        """Atomically point `current` or `previous` at releases/<version> (None: remove it)."""
        link = self.xcc_dir / name
        if version is None:
            link.unlink(missing_ok=True)
        else:
            tmp = self.xcc_dir / f".{name}.new"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(f"releases/{_plain(version)}")
            os.rename(tmp, link)
        fsync_dir(self.xcc_dir)

    def prune(self, keep: set[str]) -> list[str]:
        """Remove every release but `keep` (and what an older bridge left in releases/, such as
        its `<version>.tmp` staging: any name not kept goes, whatever it looks like)."""
        removed = []
        if self.releases.is_dir():
            for path in self.releases.iterdir():
                if path.name not in keep:
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
                    removed.append(path.name)
        return removed
