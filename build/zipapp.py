#!/usr/bin/env python3
"""Build the shipped zipapps with shiv, reproducibly, for Debian 12's /usr/bin/python3 (3.11).

    python build/zipapp.py [--out dist] [--fat PYTHON...]

- dist/satbridge.pyz: the bridge (server, console, CLI) with every dependency. It unpacks under
  /var/lib/satbridge/shiv (not a home directory); SHIV_ROOT overrides that, and the unit clears
  every SHIV_* variable.
- dist/satctl.pyz: the lean management client: grpc, protobuf, cryptography, zstandard only
  (no urwid, iptc or dbus-next).

- with --fat: dist/satbridge-fat.pyz instead, for every interpreter given (e.g. /usr/bin/python3
  python3.12 python3.13). Each interpreter's pip installs the bridge and its dependencies into
  its own directory; the trees are merged, so the version-tagged extension modules
  (`*.cpython-3XX-*.so`) sit side by side and the pure-Python files, the same for all, once.

Both are byte-for-byte reproducible (`--reproducible`: fixed timestamps, sorted entries).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
UNPACK_ROOT = "/var/lib/satbridge/shiv"
CLIENT_DEPS = [
    "grpcio==1.85.1",
    "typing-extensions==4.16.0",
    "protobuf==7.36.2",
    "cryptography==50.0.2",
    "cffi==2.1.1",
    "pycparser==3.12",
    "zstandard==0.25.0",
]


def shiv(out: Path, entry: str, *pip_args: str, root: str | None = UNPACK_ROOT) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "shiv",
            "-o",
            str(out),
            "-p",
            "/usr/bin/env python3",
            "-e",
            entry,
            "--reproducible",
            *(["--root", root] if root else []),
            *pip_args,
        ],
        check=True,
        cwd=TOP,
    )
    return out


def build(out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        # shiv passes options it does not know (--quiet) on to pip
        "satbridge": shiv(out_dir / "satbridge.pyz", "satbridge.cli:main", "--quiet", str(TOP)),
        # satctl runs on the operator's side, usually not as root: shiv's default (~/.shiv) there
        "satctl": shiv(
            out_dir / "satctl.pyz",
            "satbridge.client.cli:main",
            "--quiet",
            "--no-deps",
            str(TOP),
            *CLIENT_DEPS,
            root=None,
        ),
    }


def build_fat(out_dir: Path, pythons: list[str]) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="satbridge-fat-") as tmp:
        merged = Path(tmp) / "site"
        for n, python in enumerate(pythons):
            target = Path(tmp) / f"py{n}"
            subprocess.run(
                [
                    python,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-compile",  # .pyc files carry mtimes: not reproducible, and Python makes its own
                    "--target",
                    str(target),
                    str(TOP),
                ],
                check=True,
                cwd=TOP,
            )
            shutil.copytree(target, merged, dirs_exist_ok=True)
        shutil.rmtree(merged / "bin", ignore_errors=True)  # console scripts, with one interpreter's path
        return {
            "satbridge-fat": shiv(out_dir / "satbridge-fat.pyz", "satbridge.cli:main", "--site-packages", str(merged))
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TOP / "dist")
    parser.add_argument("--fat", nargs="+", metavar="PYTHON", help="one bridge zipapp for all these interpreters")
    opts = parser.parse_args()
    built = build_fat(opts.out, opts.fat) if opts.fat else build(opts.out)
    for name, path in built.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{name}: {path} {path.stat().st_size / 2**20:.1f} MiB sha256 {digest[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
