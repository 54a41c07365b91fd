"""The rule that keeps CI honest (tests/conftest.py): once the labs are set up, or in CI, a test
that skips, or a module that skips at collection, fails; otherwise the run ends with the list."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
SKIPPING = """
import pytest
{module_skip}
def test_skips():
    pytest.skip("needs a lab that is not here")
def test_passes():
    pass
"""


def run(tmp_path: Path, ci: str, *, module_skip: str = "") -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(SKIPPING.format(module_skip=module_skip))
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(CI=ci, SATBRIDGE_LAB_CACHE=str(tmp_path / "no-setup-here"))  # no stamp: only CI decides
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            str(tmp_path / "test_probe.py"),
        ],
        capture_output=True,
        text=True,
        cwd=TOP,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("ci", ["true", "1"])
def test_in_ci_a_skip_fails_naming_its_reason(tmp_path, ci):
    done = run(tmp_path, ci)
    assert done.returncode == 1, done.stdout
    assert "skipped although the labs are set up here" in done.stdout
    assert "needs a lab that is not here" in done.stdout


def test_in_ci_a_module_skipped_at_collection_fails(tmp_path):
    done = run(tmp_path, "true", module_skip='pytest.importorskip("no_such_module_at_all")')
    assert done.returncode != 0, done.stdout
    assert "skipped at collection although the labs are set up here" in done.stdout


def test_elsewhere_the_run_ends_with_what_did_not_run_and_the_command(tmp_path):
    if (
        os.geteuid() == 0
        and Path(os.environ.get("SATBRIDGE_LAB_CACHE", "/var/cache/satbridge-lab"), "setup.done").exists()
    ):
        pass  # the probe gets its own empty lab cache: no stamp there
    done = run(tmp_path, "")
    assert done.returncode == 0, done.stdout
    tail = done.stdout.strip().splitlines()
    assert "sudo make test" in "\n".join(tail[-3:]), "the command is at the end, after pytest's own summary"
    assert "test_probe.py::test_skips: needs a lab that is not here" in done.stdout
