"""The shipped zipapps: built by build/zipapp.py, reproducible, run with Debian's python3."""

from __future__ import annotations

import hashlib
import json
import os
import re
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
    (tmp_path / "root").mkdir()  # a read-only command on a root that does not exist creates nothing (exit 6)
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
    env = json.loads(zipfile.ZipFile(pyz).read("environment.json"))
    assert env["root"] is None, "an operator's satctl unpacks in their home, not under /var/lib"


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


def other_pythons() -> dict[str, str]:
    """Interpreters newer than Debian's 3.11, one per minor version, from PATH and then pyenv's
    versions ($PYENV_ROOT, default ~/.pyenv, as pyenv(1) itself resolves it)."""
    candidates = [shutil.which(f"python3.{m}") or "" for m in range(12, 20)]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += sorted(
        str(p) for p in pyenv_root.glob("versions/3.*/bin/python3.*") if re.fullmatch(r"python3\.\d+", p.name)
    )
    found: dict[str, str] = {}
    for python in filter(None, candidates):
        done = subprocess.run(
            [python, "-c", "import sys, pip; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
        )
        version = done.stdout.strip()
        newer = done.returncode == 0 and tuple(map(int, version.split("."))) >= (3, 12)  # 3.11 is Debian's
        if newer and version not in found:
            found[version] = python
    return found


@pytest.mark.timeout(900)
def test_the_fat_zipapp_runs_on_several_pythons(tmp_path):
    others = other_pythons()
    if not others or not os.path.exists(DEBIAN_PY):
        pytest.skip(
            "needs Debian's python3 and another Python 3 minor version with pip, on PATH (python3.12...)"
            " or under $PYENV_ROOT/versions"
        )
    pythons = {"3.11": DEBIAN_PY, **others}
    subprocess.run(
        [sys.executable, str(TOP / "build/zipapp.py"), "--out", str(tmp_path), "--fat", *pythons.values()],
        check=True,
        capture_output=True,
        timeout=900,
    )
    pyz = tmp_path / "satbridge-fat.pyz"
    # every compiled dependency of every mode, imported through shiv on each interpreter
    probe = (
        "import sys, grpc._cython.cygrpc, google.protobuf, cryptography.hazmat.bindings._rust, zstandard, iptc, "
        "urwid, dbus_next, satbridge.server.app, satbridge.menu.app; print('ran on %d.%d' % sys.version_info[:2])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIV_")}
    for version, python in pythons.items():
        done = subprocess.run(
            [python, str(pyz)],
            input=probe + "\n",
            capture_output=True,
            text=True,
            env={**env, "SHIV_ROOT": str(tmp_path / "u"), "SHIV_INTERPRETER": "1"},
            timeout=120,
        )
        assert f"ran on {version}" in done.stdout, f"{python}: {done.stdout}{done.stderr}"
