"""A private dbus-daemon for one test: a real bus, never the machine's own."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>satbridge-test</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@contextmanager
def private_bus() -> Iterator[str]:
    """Start dbus-daemon on a socket in a temp dir; yield its address; stop it (by PID)."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.skip("dbus-daemon is not installed (apt-get install dbus-daemon)")
    tmp = Path(tempfile.mkdtemp(prefix="satbridge-bus-"))
    address = f"unix:path={tmp / 'bus'}"
    config = tmp / "bus.conf"
    # No service directories: nothing is ever auto-activated on this bus (least of all a
    # systemd), and a name nobody owns answers ServiceUnknown, as on a real system bus.
    config.write_text(_CONFIG.format(address=address))
    proc = subprocess.Popen(
        [daemon, f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        printed = proc.stdout.readline().strip()
        assert printed.startswith("unix:"), f"dbus-daemon did not start: {printed!r}"
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
