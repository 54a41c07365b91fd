"""Each mode imports only what it needs: `--serve` never loads urwid, the console no server code,
satctl none of the bridge's adapters' libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
sys.argv = ["satbridge"]
{setup}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {{"urwid", "grpc", "dbus_next", "iptc",
      "satbridge", "cryptography"}})))
"""


def modules(setup: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    ("mode", "setup", "never"),
    [
        ("serve", "from satbridge.wiring import wire; import satbridge.server.app", {"urwid", "satbridge.menu"}),
        ("menu", "from satbridge.wiring import wire; import satbridge.menu.app", {"satbridge.server", "grpc"}),
        ("satctl", "import satbridge.client.cli", {"urwid", "dbus_next", "iptc", "satbridge.services", "cryptography"}),
        ("version", "import satbridge.cli", {"grpc", "urwid", "dbus_next", "cryptography"}),
    ],
)
def test_lazy_imports_per_mode(mode, setup, never):
    loaded = modules(setup)
    leaked = {m for m in loaded for n in never if m == n or m.startswith(n + ".")}
    assert not leaked, f"{mode} imports {sorted(leaked)}"
