"""Housekeeping for the shiv zipapp: old unpack directories are removed at the service's start."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def extraction_dir(module_file: Path) -> Path | None:
    """<root>/<name>_<build id> when running from a shiv extraction, else None."""
    for parent in module_file.resolve().parents:
        if parent.name == "site-packages" and "_" in parent.parent.name and (parent.parent / "site-packages").is_dir():
            return parent.parent
    return None


def remove_old_extractions(module_file: Path) -> list[str]:
    """Delete the other builds' unpack directories (and their lock files) beside ours."""
    current = extraction_dir(module_file)
    if current is None:
        return []
    name = current.name.rsplit("_", 1)[0]
    removed = []
    for other in current.parent.glob(f"{name}_*"):
        if other == current or not other.is_dir():
            continue
        shutil.rmtree(other, ignore_errors=True)
        (current.parent / f".{other.name}_lock").unlink(missing_ok=True)
        removed.append(other.name)
    if removed:
        log.info("removed %d old unpack directories of %s", len(removed), name)
    return removed
