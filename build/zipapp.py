#!/usr/bin/env python3
"""Build the shipped zipapps with shiv, reproducibly, for Debian 12's /usr/bin/python3 (3.11).

    python build/zipapp.py [--out dist]

- dist/satbridge.pyz: the bridge (server, console, CLI) with every dependency. It unpacks under
  /var/lib/satbridge/shiv (not a home directory); SHIV_ROOT overrides that, and the unit clears
  every SHIV_* variable.
- dist/satctl.pyz: the lean management client: grpc, protobuf, cryptography, zstandard only
  (no urwid, iptc or dbus-next).

Both are byte-for-byte reproducible (`--reproducible`: fixed timestamps, sorted entries).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
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


def shiv(out: Path, entry: str, *pip_args: str) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "shiv",
            "--quiet",
            "-o",
            str(out),
            "-p",
            "/usr/bin/env python3",
            "-e",
            entry,
            "--reproducible",
            "--root",
            UNPACK_ROOT,
            *pip_args,
        ],
        check=True,
        cwd=TOP,
    )
    return out


def build(out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "satbridge": shiv(out_dir / "satbridge.pyz", "satbridge.cli:main", str(TOP)),
        "satctl": shiv(out_dir / "satctl.pyz", "satbridge.client.cli:main", "--no-deps", str(TOP), *CLIENT_DEPS),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TOP / "dist")
    opts = parser.parse_args()
    for name, path in build(opts.out).items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{name}: {path} {path.stat().st_size / 2**20:.1f} MiB sha256 {digest[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
