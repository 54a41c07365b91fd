"""The VM smoke test: the built image boots under QEMU (UEFI, TCG) as an admin would boot it, the
menu shows on the serial console, satctl pairs through the forwarded port with the code the
console shows, and the bridge serves with its firewall up."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab import packages
from tests.lab.vm import booted_vm, build_image, skip_unless_ready

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1800)]
TOP = Path(__file__).resolve().parents[2]
PY = sys.executable
# The README's size budget for the images (apparent size, MiB); a bloated image fails here.
BUDGET_MIB = {"satellite.qcow2": 200, "satellite.vmdk": 200, "satellite.vhdx": 500}
FORMATS = {"satellite.qcow2": "qcow2", "satellite.vmdk": "vmdk", "satellite.vhdx": "vhdx"}


def satctl(ctl: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "satbridge.client", "--config-dir", str(ctl), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TOP,
    )


@pytest.fixture(scope="module")
def image(zipapp, tmp_path_factory):
    skip_unless_ready()
    out = tmp_path_factory.mktemp("image")
    packages.trusted_key(out / "etc", out / "vendor")  # etc/keys/vendor.pub, baked into the image
    started = time.monotonic()
    qcow2 = build_image(zipapp, out / "dist", out / "etc" / "keys")
    print(f"image built in {time.monotonic() - started:.0f} s")
    return qcow2


def test_the_images_are_what_they_say_and_within_budget(image):
    """Each file is its format, holds the very disk that boots below (so the VMDK and the VHDX
    boot as the qcow2 does, given UEFI), and fits the README's budget."""
    for name, fmt in FORMATS.items():
        path = image.parent / name
        info = subprocess.run(["qemu-img", "info", "--output=json", str(path)], capture_output=True, text=True)
        assert json.loads(info.stdout)["format"] == fmt
        if path != image:
            same = subprocess.run(["qemu-img", "compare", "-q", str(image), str(path)], capture_output=True, text=True)
            assert same.returncode == 0, f"{name} differs from the qcow2: {same.stdout}{same.stderr}"
        size_mib = path.stat().st_size / 2**20
        print(f"{name}: {size_mib:.0f} MiB")
        assert size_mib <= BUDGET_MIB[name], f"{name} is {size_mib:.0f} MiB, over its budget of {BUDGET_MIB[name]} MiB"


def test_boots_to_the_menu_and_pairs_through_the_forwarded_port(image, tmp_path):
    ctl = tmp_path / "ctl"
    started = time.monotonic()
    with booted_vm(image, tmp_path / "run") as vm:
        # the menu is the serial console's only face: no login prompt, no shell
        vm.wait_for(r"satbridge - menu", timeout=600)
        print(f"menu on the serial console {time.monotonic() - started:.0f} s after QEMU started")
        assert "login:" not in vm.screen()
        vm.keys("Down", "Enter")  # Commission / connect
        code = vm.wait_for(r"Code:\s+([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})", timeout=120).group(1)
        # the bridge may still be starting when the console is up: retry while it is unavailable
        for _ in range(120):
            done = satctl(
                ctl,
                "pair",
                "127.0.0.1",
                code,
                "--port",
                str(vm.management),
                "--pairing-port",
                str(vm.pairing),
                "--as",
                "central",
            )
            if done.returncode != 4:
                break
            time.sleep(1)
        assert done.returncode == 0, done.stdout + done.stderr
        vm.wait_for(r"PAIRED with central", timeout=60)
        print(f"paired {time.monotonic() - started:.0f} s after QEMU started")

        status = json.loads(satctl(ctl, "status", "--json").stdout)
        assert status["pairing"]["peer_name"] == "central"
        # first boot: a hostname of its own, from the machine id made at that boot
        assert re.fullmatch(r"satellite-[0-9a-f]{6}", status["hostname"]), status["hostname"]
        assert status["network"]["method"] == "dhcp", status["network"]  # NetworkManager on DHCP (its "auto")
        assert any(a["address"] == "10.0.2.15" for a in status["addresses"]), status["addresses"]
        # the firewall came up at start under the unit's hardening (the modules were loaded for it)
        journal = tmp_path / "journal.txt"
        assert satctl(ctl, "logs", "get", "journal/satbridge.service", "-o", str(journal)).returncode == 0
        assert "could not apply the firewall" not in journal.read_text(), journal.read_text()[-2000:]
        firewall = satctl(ctl, "firewall", "get")
        assert firewall.returncode == 0, firewall.stderr
        assert "default drop" in firewall.stdout  # one spelling of enums, lower case (issue 20)
        # the menu logs to a file, never over its own screen
        assert "INFO " not in vm.screen()
