"""The real console, driven through tmux at 80x24 in sandbox mode (its own tmux socket), with a
real bridge serving beside it and satctl pairing from the outside. `capture-pane -e` shows the
attributes, so the tests see the reverse-video focus as a terminal draws it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab.bridge import serving

PY = sys.executable
TOP = Path(__file__).resolve().parents[2]
REVERSE = re.compile(r"\x1b\[[0-9;]*7[0-9;]*m([^\x1b]*)")


class Console:
    def __init__(
        self,
        socket: str,
        name: str,
        root: Path,
        term: str = "xterm",
        log: Path | None = None,
        env: str = "",
        after: str = "",
    ) -> None:
        self.socket, self.name = socket, name
        menu = f"{env} {PY} -m satbridge --root {root} --sandbox menu".strip() + after
        command = f"cd {TOP} && TERM={term} {menu}"
        if log is not None:  # the raw bytes the console writes, before tmux interprets them
            command = f"cd {TOP} && TERM={term} script -qfc '{menu}' {log}"
        self.tmux("new-session", "-d", "-s", name, "-x", "80", "-y", "24", command)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def escaped(self) -> str:
        return self.tmux("capture-pane", "-p", "-e", "-t", self.name)

    def reverse(self) -> list[str]:
        return [m.strip(" <>\n") for m in REVERSE.findall(self.escaped()) if m.strip(" <>\n")]

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def text(self, text: str) -> None:
        self.tmux("send-keys", "-l", "-t", self.name, text)

    def wait(self, text: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never showed; the screen:\n{self.screen()}")

    def close(self) -> None:
        self.tmux("kill-session", "-t", self.name)


@pytest.fixture
def satellite(tmp_path):
    if not shutil.which("tmux"):
        pytest.fail("tmux is not installed")
    root, ctl = tmp_path / "root", tmp_path / "ctl"
    socket = f"sbt19-{tmp_path.name}"
    consoles: list[Console] = []

    def console(name: str, **kw) -> Console:
        consoles.append(Console(socket, name, root, **kw))
        return consoles[-1]

    with serving(root) as bridge:
        try:
            yield console, root, ctl, bridge.mgmt, bridge.pairing
        finally:
            for c in consoles:
                c.close()
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)


def satctl_pair(ctl: Path, mgmt: int, pairing: int, code: str) -> None:
    done = subprocess.run(
        [PY, "-m", "satbridge.client", "--config-dir", str(ctl), "pair", "127.0.0.1", code, "--port", str(mgmt),
         "--pairing-port", str(pairing), "--as", "central-1"],
        capture_output=True, text=True, cwd=TOP, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_focus_is_reverse_video_and_two_consoles_share_one_code(satellite):
    console, root, ctl, mgmt, pairing = satellite
    tty1, ttys0 = console("tty1"), console("ttyS0")
    tty1.wait("Commission / connect")
    assert tty1.reverse() == ["1  Status"], "the focus is drawn in reverse video"
    assert "\x1b[?1000h" not in tty1.escaped()
    tty1.keys("2")
    code = tty1.wait("Code:").split("Code:")[1].split()[0]
    ttys0.wait("Commission / connect")
    ttys0.keys("2")
    assert ttys0.wait(f"Code:         {code}"), "the second console shows the same code"
    ttys0.keys("Tab", "Enter")  # New code
    new = ttys0.wait("no longer works").split("Code:")[1].split()[0]
    assert new != code
    tty1.wait(f"Code:         {new}", timeout=3)
    shown = json.loads(
        subprocess.run([PY, "-m", "satbridge", "--root", str(root), "pair-window", "show", "--json"],
                       capture_output=True, text=True, cwd=TOP, check=False).stdout
    )  # fmt: skip
    assert shown["code"] == new, "the CLI shows the same code"
    satctl_pair(ctl, mgmt, pairing, new)
    tty1.wait("PAIRED with central-1")
    ttys0.wait("PAIRED with central-1")
    tty1.keys("Escape")
    assert "PAIRED with central-1" in tty1.wait("satbridge - menu").splitlines()[0]  # the header
    tty1.keys("7")
    tty1.wait("Disconnect from central-1?")
    assert tty1.reverse() == ["No"], "a destructive question starts on No"
    tty1.keys("Enter")
    tty1.wait("Commission / connect")


def test_network_form_prefilled_and_firewall_both_families(satellite):
    console, _root, _ctl, _mgmt, _pairing = satellite
    c = console("net")
    c.wait("Commission / connect")
    c.keys("3")
    c.wait("sandbox0: DHCP")
    c.text("2001:db8::5/64")
    c.keys("Tab", "Tab", "Tab", "Tab", "Enter")
    c.wait("is an IPv6 address")
    c.keys("BTab", "BTab", "BTab", "BTab", "C-u")  # back from Apply to the address
    c.text("192.0.2.10/24")
    c.keys("Enter")
    c.text("192.0.2.1")
    c.keys("Tab", "Tab", "Tab", "Enter")
    c.wait("KEEP THIS SETTING?")
    assert c.reverse()[-1] == "Keep this setting"
    c.keys("Enter")
    c.wait("Kept: the new network setting stays.", timeout=3)
    c.keys("Escape")
    c.wait("satbridge - menu")
    c.keys("3")
    screen = c.wait("static, 192.0.2.10/24")
    assert "[192.0.2.10/24" in screen, screen
    assert "[192.0.2.1 " in screen
    c.keys("Escape")
    c.wait("satbridge - menu")
    c.keys("5")
    c.wait("Reset to the factory rules")
    c.keys("Tab", "NPage", "NPage")
    c.wait("IPv6 (SATBRIDGE chains):")
    c.wait("ipv6-icmp")


def test_vt220_gets_ascii_and_declared_sequences_only(satellite, tmp_path):
    console, _root, _ctl, _mgmt, _pairing = satellite
    raw = tmp_path / "raw.log"
    c = console("vt", term="vt220", log=raw)
    c.wait("Commission / connect")
    c.keys("8")
    c.wait("Type RESET")
    c.keys("Down")
    c.text("RESET")
    c.keys("Tab", "Enter")
    c.wait("Factory reset complete", timeout=20)  # its last step reports "new identity 0123..."
    c.keys("F10")
    time.sleep(0.5)
    data = raw.read_bytes()
    assert data, "nothing captured"
    assert all(b < 128 for b in data), "nothing but ASCII"
    sequences = re.findall(rb"\x1b(\[[0-9;?]*[ -/]*[@-~]|[()].|[^\[()])", data)
    allowed = re.compile(rb"\[[0-9;]*[HJKmABCDPMXL@r]|\[\?25[hl]|\[\?7h|\)0|\(B|[78=>]")
    bad = {s for s in sequences if not allowed.fullmatch(s)}
    assert not bad, f"sequences a VT220 does not declare: {bad}"


def test_vt220_screens_land_on_their_rows(satellite):
    """The red team's About -> Esc -> Status -> Esc on TERM=vt220 (no alternate screen): each
    screen is whole, nothing of the one before stays, idle redraws do not drift."""
    console, _root, _ctl, _mgmt, _pairing = satellite
    c = console("vtrows", term="vt220")
    c.wait("Commission / connect")
    c.keys("9")
    c.wait("satbridge - about")
    c.keys("Escape")
    c.wait("9  About")
    c.keys("1")
    c.wait("Paired:")
    time.sleep(2.5)  # idle redraws
    rows = c.screen().splitlines()
    assert "satbridge - status" in rows[1], rows
    assert rows[2].startswith("====="), rows
    assert not any("About" in r or "satbridge - menu" in r for r in rows), rows
    c.keys("Escape")
    c.wait("9  About")
    time.sleep(2.5)
    rows = c.screen().splitlines()
    assert "satbridge - menu" in rows[1], rows
    assert "Paired:" not in "\n".join(rows), rows


@pytest.mark.parametrize("lang", ["LANG=C", "LANG=POSIX", ""])
def test_the_c_locale_is_ascii_mode(satellite, tmp_path, lang):
    """Red team 19, finding 6: Python coerces LANG=C to LC_CTYPE=C.UTF-8 before the menu reads
    the environment; the menu still sees the C locale it was given and draws in basic mode."""
    console, _root, _ctl, _mgmt, _pairing = satellite
    raw = tmp_path / "raw.log"
    c = console("lc", term="linux", log=raw, env=f"env -i PATH=/usr/bin:/bin TERM=linux {lang}")
    c.wait("Commission / connect")
    c.keys("F10")
    time.sleep(0.5)
    data = raw.read_bytes()
    assert b"\x1b[?1049h" not in data, "no alternate screen"
    assert b"\x1b[?1000l" not in data, "no mouse-mode resets"
    assert not re.search(rb"\x1b\[\?[0-9;]*\$p", data), "no mode queries"
    assert all(b < 128 for b in data), "nothing but ASCII"


def test_ctrl_backslash_leaves_like_ctrl_c_and_restores_the_terminal(satellite):
    """Red team 19, finding 7: SIGQUIT killed the menu with the alternate screen still up."""
    console, _root, _ctl, _mgmt, _pairing = satellite
    c = console("quit", after="; echo EXIT=$?; sleep 30")
    c.wait("Commission / connect")
    c.keys("C-\\")
    screen = c.wait("EXIT=")
    assert "EXIT=131" in screen
    assert "Commission / connect" not in screen, "the alternate screen was left up"
    assert "Traceback" not in screen
    assert "Quit" not in screen.replace("EXIT", "")


def test_no_terminal_is_one_line_and_no_byte(tmp_path):
    """Red team 19, finding 7: `satbridge menu </dev/null` (covered by the CLI's terminal check)."""
    command = [PY, "-m", "satbridge", "--root", str(tmp_path), "--sandbox", "menu"]
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, check=False, cwd=TOP)
    assert done.returncode != 0
    assert done.stdout == b"", "nothing written to the screen"
    assert done.stderr.strip().count(b"\n") == 0, done.stderr
    assert b"needs a terminal" in done.stderr
