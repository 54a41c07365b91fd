"""The shipped zipapps: built by build/zipapp.py, reproducible, run with Debian's python3."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
DEBIAN_PY = "/usr/bin/python3"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, str(TOP / "build/zipapp.py"), "--out", str(out)], check=True, capture_output=True, timeout=900
    )
    return out


def run(pyz: Path, *args: str, unpack: Path) -> subprocess.CompletedProcess[str]:
    if not os.path.exists(DEBIAN_PY):
        pytest.skip("Debian's /usr/bin/python3 is not here")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIV_")}
    env["SHIV_ROOT"] = str(unpack)  # tests never write /var/lib/satbridge
    return subprocess.run([DEBIAN_PY, str(pyz), *args], capture_output=True, text=True, env=env, timeout=120)


def test_the_bridge_zipapp_runs_on_debian_python(built, tmp_path):
    pyz = built / "satbridge.pyz"
    assert run(pyz, "version", unpack=tmp_path / "u").stdout.startswith("satbridge 0.")
    status = run(pyz, "--root", str(tmp_path / "root"), "--sandbox", "status", "--json", unpack=tmp_path / "u")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["bridge_version"]
    env = json.loads(zipfile.ZipFile(pyz).read("environment.json"))
    assert env["root"] == "/var/lib/satbridge/shiv", "it unpacks under /var/lib/satbridge, not a home"


def test_satctl_zipapp_is_lean(built, tmp_path):
    pyz = built / "satctl.pyz"
    names = zipfile.ZipFile(pyz).namelist()
    packages = {n.split("/")[1] for n in names if n.startswith("site-packages/") and n.count("/") >= 2}
    assert {"grpc", "cryptography", "satbridge"} <= packages
    assert not {"urwid", "iptc", "dbus_next"} & packages
    done = run(pyz, "--config-dir", str(tmp_path / "ctl"), "status", unpack=tmp_path / "u")
    assert done.returncode == 6, done.stderr  # not paired yet: a clean, named error
    assert "satctl pair" in done.stderr


def test_builds_are_reproducible(built, tmp_path):
    again = tmp_path / "again"
    subprocess.run(
        [sys.executable, str(TOP / "build/zipapp.py"), "--out", str(again)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    for name in ("satbridge.pyz", "satctl.pyz"):
        first = hashlib.sha256((built / name).read_bytes()).hexdigest()
        assert hashlib.sha256((again / name).read_bytes()).hexdigest() == first, f"{name} differs between builds"
    shutil.rmtree(again)


def test_old_unpack_directories_are_removed(tmp_path):
    from satbridge.system.zipapp import remove_old_extractions

    root = tmp_path / "shiv"
    for build in ("aaa", "bbb", "ccc"):
        (root / f"satbridge.pyz_{build}/site-packages/satbridge").mkdir(parents=True)
        (root / f".satbridge.pyz_{build}_lock").touch()
    (root / "satctl.pyz_zzz/site-packages").mkdir(parents=True)
    me = root / "satbridge.pyz_ccc/site-packages/satbridge/__init__.py"
    me.touch()
    assert sorted(remove_old_extractions(me)) == ["satbridge.pyz_aaa", "satbridge.pyz_bbb"]
    assert sorted(p.name for p in root.iterdir()) == [".satbridge.pyz_ccc_lock", "satbridge.pyz_ccc", "satctl.pyz_zzz"]
    assert remove_old_extractions(Path(__file__)) == [], "not from a zipapp: nothing to do"
