"""The real console, driven through tmux at 80x24 in sandbox mode, with a real bridge
serving beside it and satctl pairing from the outside."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab.bridge import serving

PY = sys.executable
TOP = Path(__file__).resolve().parents[2]


class Console:
    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "80",
                "-y",
                "24",
                f"cd {TOP} && {PY} -m satbridge --root {root} --sandbox menu",
            ],
            check=True,
        )

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def text(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-l", "-t", self.name, text], check=True)

    def wait(self, text: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never showed; the screen:\n{self.screen()}")

    def open(self, index: int, title: str) -> str:
        self.keys("q")
        self.wait("Enter choose")
        self.keys(*(["Down"] * index), "Enter")
        return self.wait(f"satbridge - {title}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False)


@pytest.fixture
def satellite(tmp_path):
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    root, ctl = tmp_path / "root", tmp_path / "ctl"
    with serving(root) as bridge:
        console = Console(f"sbt{bridge.mgmt}", root)
        try:
            yield console, root, ctl, bridge.mgmt, bridge.pairing
        finally:
            console.close()


def test_every_screen_of_the_console(satellite):
    console, root, ctl, mgmt, pairing = satellite
    console.wait("Commission / connect")

    screen = console.open(0, "status")
    console.wait("Paired:          no")

    screen = console.open(1, "commission / connect")
    screen = console.wait("Code:")
    code = next(line.split()[1] for line in screen.splitlines() if "Code:" in line)
    done = subprocess.run(
        [
            PY,
            "-m",
            "satbridge.client",
            "--config-dir",
            str(ctl),
            "pair",
            "127.0.0.1",
            code,
            "--port",
            str(mgmt),
            "--pairing-port",
            str(pairing),
            "--as",
            "central-1",
        ],
        capture_output=True,
        text=True,
        cwd=TOP,
    )
    assert done.returncode == 0, done.stderr
    console.wait("PAIRED with central-1")

    console.open(2, "network")
    console.wait("sandbox0: DHCP")
    console.text("192.0.2.0/24")
    console.keys("Down", "Down", "Down", "Enter")
    console.wait("! 192.0.2.0 is the network address of 192.0.2.0/24")
    console.keys("Up", "Up", "Up", *(["BSpace"] * 14))
    console.text("192.0.2.10/24")
    console.keys("Down")
    console.text("192.0.2.1")
    console.keys("Down", "Down", "Enter")
    console.wait("KEEP THIS SETTING?")
    console.wait("static, 192.0.2.10/24")

    console.open(3, "XCC service")
    console.wait("XCC: not installed")

    console.open(4, "firewall")
    console.wait("Reset to the factory rules")
    console.keys("Enter")
    console.wait("Reset the firewall to the factory rules?")
    console.keys("Enter")
    console.wait("Firewall reset")

    console.open(5, "logs")
    console.wait("satbridge/audit.log")
    console.keys("Enter")
    console.wait("pairing-window-opened")
    console.keys("/")
    console.text("paired")
    console.keys("Enter")
    console.wait("found 'paired'")

    console.keys("q")
    console.open(6, "confirm")
    console.keys("Enter")
    console.wait("Disconnected.")
    status = json.loads(
        subprocess.run(
            [PY, "-m", "satbridge", "--root", str(root), "status", "--json"], capture_output=True, text=True, cwd=TOP
        ).stdout
    )
    assert not status["pairing"]["paired"]

    console.open(7, "factory reset")
    console.text("RESET")
    console.keys("Down", "Enter")
    console.wait("Factory reset complete", timeout=20)

    console.open(8, "about")
    console.wait("Satellite Bridge 0.")
    console.keys("F1")
    console.wait("log viewer: search for a text")
