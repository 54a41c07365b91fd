"""The whole VM: the satellite image (build/appliance/build-image.sh) booted by QEMU with UEFI,
its serial console in a private tmux server, the bridge's two ports forwarded from 127.0.0.1 only.

/dev/kvm on these machines is PVM and cannot boot a stock kernel, so this is TCG: a boot to the
menu takes about a minute and both cores. QEMU's user-mode network reaches nothing but the
forwarded ports; QEMU is stopped by its PID and the tmux server by its socket in `finally`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab.appliance import rootfs_skip_reason
from tests.lab.bridge import free_port

TOP = Path(__file__).resolve().parents[2]
BUILD = TOP / "build" / "appliance"
OVMF = Path(os.environ.get("OVMF", "/usr/share/OVMF"))
TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "sfdisk": "fdisk",
    "objcopy": "binutils",
    "tmux": "tmux",
}


def vm_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the VM lab needs root (the image is built from the rootfs mmdebstrap makes as root)"
    for tool, package in TOOLS.items():
        if not shutil.which(tool):
            return f"{tool} is missing (apt-get install {package})"
    if not (OVMF / "OVMF_CODE_4M.fd").exists():
        return f"no UEFI firmware in {OVMF} (apt-get install ovmf)"
    return rootfs_skip_reason()


def build_image(zipapp: Path, out: Path, keys: Path) -> Path:
    done = subprocess.run(
        [str(BUILD / "build-image.sh"), str(zipapp), str(out), str(keys)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode:
        raise RuntimeError(f"build-image.sh failed:\n{done.stderr[-4000:]}")
    print(done.stderr[-600:])
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass
class Vm:
    socket: str  # the private tmux server's
    management: int  # 127.0.0.1 ports forwarded to the guest's 50051 and 50052
    pairing: int
    serial_log: Path

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "vm")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "vm", *keys)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.screen())
            if found:
                return found
            time.sleep(0.5)
        tail = self.serial_log.read_bytes()[-3000:].decode(errors="replace") if self.serial_log.exists() else ""
        raise AssertionError(
            f"/{pattern}/ never showed in {timeout:g} s; the screen:\n{self.screen()}\nserial:\n{tail}"
        )


def _qemu_pid(shell: int) -> int:
    try:
        kids = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
    except OSError:
        return 0
    return int(kids[0]) if kids else 0


def _stop(pid: int) -> None:
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)


def remove_leftovers() -> list[int]:
    """Stop the VMs of runs that were killed before their `finally` (pytest-timeout's os._exit,
    a SIGKILL): each run's tmux server is named satvm-<its PID>, so a server whose run is gone
    is a leftover. Its QEMU is stopped by PID, then the server by its socket. Returns the PIDs."""
    base = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
    stopped = []
    for sock in base.glob("satvm-*"):
        owner = sock.name.removeprefix("satvm-")
        if not owner.isdigit() or Path(f"/proc/{owner}").exists():
            continue
        done = subprocess.run(
            ["tmux", "-L", sock.name, "display-message", "-p", "-t", "vm", "#{pane_pid}"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        shell = done.stdout.strip()
        qemu = _qemu_pid(int(shell)) if shell.isdigit() else 0
        _stop(qemu)
        subprocess.run(["tmux", "-L", sock.name, "kill-server"], capture_output=True, timeout=10)
        sock.unlink(missing_ok=True)  # a server that had died already leaves its socket behind
        if qemu:
            stopped.append(qemu)
    return stopped


@contextmanager
def booted_vm(image: Path, work: Path) -> Iterator[Vm]:
    """Boot `image` through a throw-away overlay in `work`; the console is an 80x24 terminal.
    A VM that a killed run left is stopped first."""
    remove_leftovers()
    vm = Vm(f"satvm-{os.getpid()}", free_port(), free_port(), work / "serial.log")
    boot = f"{BUILD / 'boot-vm.sh'} {image} {work} {vm.management} {vm.pairing}; echo QEMU-EXIT $?; sleep 3600"
    subprocess.run(
        ["tmux", "-L", vm.socket, "new-session", "-d", "-s", "vm", "-x", "80", "-y", "24", boot], check=True, timeout=10
    )
    qemu = 0
    try:
        shell = int(vm._tmux("display-message", "-p", "-t", "vm", "#{pane_pid}").strip())
        vm._tmux("pipe-pane", "-t", "vm", "-o", f"cat >> {vm.serial_log}")
        deadline = time.monotonic() + 10
        while not qemu and time.monotonic() < deadline:
            qemu = _qemu_pid(shell)
            time.sleep(0.05)
        if not qemu:
            raise RuntimeError(f"QEMU did not start: {vm.screen()}")
        yield vm
    finally:
        _stop(qemu)
        subprocess.run(["tmux", "-L", vm.socket, "kill-server"], capture_output=True, timeout=10)


def skip_unless_ready() -> None:
    reason = vm_skip_reason()
    if reason:
        pytest.skip(reason)
