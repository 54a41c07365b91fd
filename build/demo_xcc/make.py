#!/usr/bin/env python3
"""Build demo XCC packages, signed with a test key (never a vendor's).

    python build/demo_xcc/make.py OUT_DIR [--version 2.0.0] [--variant good|crash|bad-health]
        [--port 18080] [--bind ADDRESS] [--key KEY] [--no-health]

Prints the package path. Without --key it makes OUT_DIR/test-vendor.key (+ .pub) once.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from satbridge.client.package import build, keygen  # noqa: E402


def make(
    out: Path,
    *,
    version: str,
    variant: str = "good",
    port: int = 18080,
    bind: str = "127.0.0.1",
    key: Path | None = None,
    health: bool = True,
    log_dir: str = "/var/log/xcc",
    compression: str = "gzip",
    probe: str = "http",
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    if key is None:
        key = out / "vendor.key"
        if not key.exists():
            keygen(out)
    command = ["bin/xcc", "--port", str(port), "--bind", bind, "--log-dir", log_dir]
    if variant == "crash":
        command += ["--crash-after", "1"]
    elif variant == "bad-health":
        command += ["--fail-health"]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        shutil.copytree(HERE / "payload", source / "payload")
        (source / "payload" / "VERSION").write_text(version + "\n")
        spec = {
            "name": "xcc",
            "version": version,
            "command": command,
            "health": {"kind": probe, "port": port, "path": "/health"} if health else None,
        }
        (source / "package.json").write_text(json.dumps(spec))
        suffix = {"gzip": ".tar.gz", "zstd": ".tar.zst", "": ".tar"}[compression]
        target = out / f"xcc-{version}-{variant}{suffix}"
        build(source, key.read_bytes(), target, compression=compression)
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--variant", choices=["good", "crash", "bad-health"], default="good")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--bind", default="127.0.0.1", help="the address XCC listens on")
    parser.add_argument("--key", type=Path)
    parser.add_argument("--no-health", action="store_true")
    opts = parser.parse_args()
    print(
        make(
            opts.out,
            version=opts.version,
            variant=opts.variant,
            port=opts.port,
            bind=opts.bind,
            key=opts.key,
            health=not opts.no_health,
        )
    )
