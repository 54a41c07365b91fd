"""A 1 GiB log downloads in constant memory: the bridge's RSS, sampled while satctl downloads."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from tests.lab.bridge import PeakRss, satctl_pair, serving

PY = sys.executable
GIB = 1 << 30


def test_one_gib_download_in_constant_memory(tmp_path):
    root, ctl = tmp_path / "root", tmp_path / "ctl"
    log = root / "var/log/xcc/big.log"
    log.parent.mkdir(parents=True)
    with open(log, "wb") as f:  # sparse, so the test writes nothing to disk
        f.truncate(GIB)
    with serving(root) as bridge:
        satctl_pair(bridge, ctl)
        out = tmp_path / "big.copy"
        with PeakRss(bridge.proc.pid) as memory:
            got = subprocess.run(
                [
                    PY,
                    "-m",
                    "satbridge.client",
                    "--config-dir",
                    str(ctl),
                    "--timeout",
                    "120",
                    "logs",
                    "get",
                    "xcc/big.log",
                    "-o",
                    str(out),
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
    assert got.returncode == 0, got.stderr
    assert out.stat().st_size == GIB
    with open(out, "rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == hashlib.sha256(b"\0" * GIB).hexdigest()
    print(f"bridge RSS idle {memory.idle / 2**20:.0f} MiB, +{memory.grew_mib:.0f} MiB at peak for 1 GiB")
    assert memory.grew_mib < 64, f"the bridge grew by {memory.grew_mib:.0f} MiB while sending 1 GiB"
