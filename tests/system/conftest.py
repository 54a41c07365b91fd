"""Fixtures shared by the appliance tests: the zipapp, built once per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def zipapp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, str(TOP / "build/zipapp.py"), "--out", str(out)], check=True, capture_output=True, timeout=900
    )
    return out / "satbridge.pyz"
